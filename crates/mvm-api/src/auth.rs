//! Who may call the API: the owner through the unix socket (0600 in the
//! 0700 home, so the filesystem decides), anyone with the bearer token
//! through TCP.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::ApiError;

/// The token file, `$MVM_HOME/api-token`.
pub fn token_path(home: &Path) -> std::path::PathBuf {
    home.join("api-token")
}

/// The TCP listener's token: read, or generated (32 random bytes, hex)
/// and written 0600 on first use. A token file others can read is refused.
pub fn load_or_create_token(home: &Path) -> Result<String, ApiError> {
    let path = token_path(home);
    let io = |what: &str, e: std::io::Error| {
        ApiError::internal(format!("{what} {}: {e}", path.display()))
    };
    mvm_runtime::private::create_dir_all(home).map_err(|e| io("creating the directory of", e))?;
    match std::fs::OpenOptions::new().read(true).open(&path) {
        Ok(mut f) => {
            let meta = f.metadata().map_err(|e| io("reading", e))?;
            if meta.permissions().mode() & 0o077 != 0
                || !mvm_runtime::private::is_owner(std::os::unix::fs::MetadataExt::uid(&meta))
            {
                return Err(ApiError::internal(format!(
                    "{} is readable by others or not yours; refusing to use it (remove it and a new one is made)",
                    path.display()
                )));
            }
            let mut token = String::new();
            f.read_to_string(&mut token).map_err(|e| io("reading", e))?;
            let token = token.trim().to_string();
            if token.len() < 32 {
                return Err(ApiError::internal(format!(
                    "{} holds no usable token (remove it and a new one is made)",
                    path.display()
                )));
            }
            Ok(token)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            let bytes: [u8; 32] = rand::random();
            let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let staged = home.join(format!(".api-token.{}", std::process::id()));
            let mut f =
                mvm_runtime::private::create_file(&staged).map_err(|e| io("creating", e))?;
            f.write_all(token.as_bytes())
                .map_err(|e| io("writing", e))?;
            f.sync_all().map_err(|e| io("writing", e))?;
            // Not over a token another server made meanwhile.
            std::fs::hard_link(&staged, &path)
                .or_else(|e| {
                    if e.kind() == ErrorKind::AlreadyExists {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
                .map_err(|e| io("publishing", e))?;
            let _ = std::fs::remove_file(&staged);
            load_or_create_token(home)
        }
        Err(e) => Err(io("opening", e)),
    }
}

/// Marks a request that came through the TCP listener. Such a client may
/// be on another machine, so it may not name paths on this host (a
/// compiled directory as template, a `source_root` to bundle from): the
/// token lets it drive sandboxes, not read this host's files.
#[derive(Debug, Clone, Copy)]
pub struct Remote;

/// Byte-wise comparison whose time does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Middleware for the TCP listener: `Authorization: Bearer TOKEN` or 401.
pub async fn require_token(
    State(token): State<Arc<String>>,
    mut request: Request,
    next: Next,
) -> Response {
    // Handlers see where a request came from (see [`Remote`]).
    request.extensions_mut().insert(Remote);
    let given = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(t) if same(t.as_bytes(), token.as_bytes()) => next.run(request).await,
        _ => ApiError::unauthorized().into_response(),
    }
}

/// Binds the unix socket 0600. A socket another server still answers on
/// is left alone (error); a stale one is replaced.
pub fn bind_unix(path: &Path) -> Result<(tokio::net::UnixListener, std::fs::File), ApiError> {
    if let Some(dir) = path.parent() {
        mvm_runtime::private::create_dir_all(dir)
            .map_err(|e| ApiError::internal(format!("creating {}: {e}", dir.display())))?;
    }
    // One server per home, decided by a lock held for the server's life:
    // two started at once (two SDK processes autostarting) cannot both
    // replace the socket.
    let lock_path = path.with_extension("sock.lock");
    let lock = mvm_runtime::private::create_file_keep(&lock_path)
        .map_err(|e| ApiError::internal(format!("opening {}: {e}", lock_path.display())))?;
    use std::os::fd::AsRawFd;
    // SAFETY: flock on an fd we own.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "E_API_RUNNING",
            format!("an mvm API server already runs for {}", path.display()),
            "use it, or stop it first",
        ));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "E_API_RUNNING",
                format!("an mvm API server already answers on {}", path.display()),
                "use it, or stop it first",
            ));
        }
        Err(_) => {
            // Stale (or absent): only a socket is removed.
            if std::fs::symlink_metadata(path)
                .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
            {
                let _ = std::fs::remove_file(path);
            }
        }
    }
    // Bound under a umask that leaves it 0600 from the start, so there is
    // no window in which another user could connect.
    let old = unsafe { libc::umask(0o177) };
    let bound = std::os::unix::net::UnixListener::bind(path);
    unsafe { libc::umask(old) };
    let listener =
        bound.map_err(|e| ApiError::internal(format!("listening on {}: {e}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| ApiError::internal(format!("restricting {}: {e}", path.display())))?;
    let listener = listener
        .set_nonblocking(true)
        .and_then(|()| tokio::net::UnixListener::from_std(listener))
        .map_err(|e| ApiError::internal(format!("listening on {}: {e}", path.display())))?;
    Ok((listener, lock))
}
