//! mvm's local HTTP API, `mvmctl serve` (docs/api.md): sandboxes,
//! commands, files, function invoke and metrics, over a unix socket in
//! the mvm home (owner only) and, with a bearer token, over TCP.
//!
//! Layout: [`routes`] is the table of endpoints (checked against
//! docs/openapi.json), [`sandboxes`], [`commands`], [`files`] and
//! [`metrics`] answer them, [`templates`] turns a base template into an
//! image, [`auth`] guards the TCP listener, [`error`] is the one error
//! shape. Everything an instance does goes through `mvm-runtime`, the same
//! code the CLI runs, so the CLI and the API see the same instances.

pub mod auth;
pub mod commands;
pub mod error;
pub mod files;
pub mod metrics;
pub mod records;
pub mod routes;
pub mod sandboxes;
pub mod templates;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mvm_runtime::up::{BootAssets, SupervisorCommand};

pub use error::ApiError;

/// The API's version, in `/v1/health`.
pub const API_VERSION: u32 = 1;

/// What `mvmctl serve` was asked for.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub home: PathBuf,
    /// Also listen on TCP here (bearer token required).
    pub listen: Option<SocketAddr>,
    /// The `mvmctl` binary: supervisors are started from it, and base
    /// templates are compiled and built by it.
    pub mvmctl: PathBuf,
}

/// What every handler shares.
pub struct App {
    pub home: PathBuf,
    pub mvmctl: PathBuf,
    pub supervisor: SupervisorCommand,
    /// Prepared once, again when a `cache clean` took its files.
    boot: std::sync::Mutex<Option<BootAssets>>,
    pub commands: commands::Registry,
    pub metrics: metrics::Metrics,
    /// Base-template builds, one at a time per template.
    pub builds: templates::Builds,
}

impl App {
    pub fn new(home: &Path, mvmctl: &Path) -> App {
        App {
            home: home.to_path_buf(),
            mvmctl: mvmctl.to_path_buf(),
            supervisor: SupervisorCommand {
                program: mvmctl.to_path_buf(),
                args: vec!["__supervise".into()],
            },
            boot: std::sync::Mutex::default(),
            commands: commands::Registry::default(),
            metrics: metrics::Metrics::default(),
            builds: templates::Builds::default(),
        }
    }

    /// The kernel and initrd every instance boots (fetched once).
    pub fn boot_assets(&self) -> Result<BootAssets, ApiError> {
        let mut boot = self.boot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = boot.as_ref()
            && b.kernel.is_file()
            && b.initrd.is_file()
        {
            return Ok(b.clone());
        }
        let cache = mvm_runtime::assets::cache_dir()?;
        let assets =
            mvm_runtime::assets::boot_assets(&cache, mvm_runtime::assets::Progress::Hidden)?;
        *boot = Some(assets.clone());
        Ok(assets)
    }
}

pub type Shared = Arc<App>;

/// Runs the blocking `f` (runtime calls block on sockets and processes)
/// off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("a worker panicked: {e}")))?
}

/// `$MVM_HOME/api.sock`.
pub fn socket_path(home: &Path) -> PathBuf {
    home.join("api.sock")
}

/// Serves until interrupted (SIGINT/SIGTERM).
pub async fn serve(opts: ServeOptions) -> Result<(), ApiError> {
    let app = Arc::new(App::new(&opts.home, &opts.mvmctl));
    let (unix, _lock) = auth::bind_unix(&socket_path(&opts.home))?;
    let mut tasks = tokio::task::JoinSet::new();
    let router = routes::router(app.clone());
    tasks.spawn(async move { axum::serve(unix, router).await });
    if let Some(addr) = opts.listen {
        let token = auth::load_or_create_token(&opts.home)?;
        let tcp = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| ApiError::internal(format!("listening on {addr}: {e}")))?;
        if !addr.ip().is_loopback() {
            tracing::warn!(
                "listening on {addr}, beyond this machine: anyone with the token in $MVM_HOME/api-token controls your sandboxes"
            );
        }
        let router = routes::router(app.clone()).layer(axum::middleware::from_fn_with_state(
            Arc::new(token),
            auth::require_token,
        ));
        tasks.spawn(async move { axum::serve(tcp, router).await });
    }
    eprintln!(
        "mvm API listening on {}{}",
        socket_path(&opts.home).display(),
        opts.listen
            .map(|a| format!(" and http://{a}"))
            .unwrap_or_default()
    );
    let stop = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    };
    tokio::select! {
        _ = stop => {}
        Some(done) = tasks.join_next() => {
            if let Ok(Err(e)) = done {
                return Err(ApiError::internal(format!("serving: {e}")));
            }
        }
    }
    let _ = std::fs::remove_file(socket_path(&opts.home));
    Ok(())
}

/// [`serve`] on a runtime of its own, for `mvmctl serve`.
pub fn serve_blocking(opts: ServeOptions) -> Result<(), ApiError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(256)
        .enable_all()
        .build()
        .map_err(|e| ApiError::internal(format!("starting the server's runtime: {e}")))?;
    rt.block_on(serve(opts))
}
