//! `/v1/sandboxes/{id}/files`: read, write, list, stat, mkdir, remove.
//!
//! Contents stream both ways: an upload is written in chunks (the first
//! to a temporary name beside the target, the rest appended, then renamed
//! over it in the guest, so a reader never sees half a file), a download
//! is `cat` through the exec stream with the file's size as its length.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use mvm_proto::FileKind;
use mvm_runtime::InstanceName;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::error::{ApiQuery, JsonBody};
use crate::sandboxes::parse_id;
use crate::{ApiError, Shared, blocking};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathQuery {
    pub path: String,
    /// Octal, e.g. `644` (writes only).
    #[serde(default)]
    pub mode: Option<String>,
}

/// A guest path from the API: absolute, no NUL. The guest resolves it (it
/// is the guest's own filesystem; nothing on the host is named).
fn guest_path(p: &str) -> Result<String, ApiError> {
    if !p.starts_with('/') || p.contains('\0') {
        return Err(ApiError::bad_request(
            format!("`path` must be an absolute guest path, got {p:?}"),
            "e.g. /app/data.csv",
        ));
    }
    Ok(p.to_string())
}

fn kind_str(k: &FileKind) -> &'static str {
    match k {
        FileKind::File => "file",
        FileKind::Dir => "dir",
        FileKind::Symlink => "symlink",
        FileKind::Other => "other",
    }
}

fn guest(home: &std::path::Path, name: &InstanceName, argv: &[&str]) -> Result<(), ApiError> {
    Ok(mvm_runtime::call::guest_tool(home, name, argv)?)
}

pub async fn stat(
    State(app): State<Shared>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PathQuery>,
) -> Result<Json<Value>, ApiError> {
    let name = parse_id(&id)?;
    let path = guest_path(&q.path)?;
    let home = app.home.clone();
    blocking(move || {
        let st = mvm_runtime::call::stat(&home, &name, &path)?;
        Ok(Json(json!({"path": path, "kind": kind_str(&st.kind), "size": st.size, "mode": st.mode, "mtime_unix_ms": st.mtime_unix_ms, "link_target": st.link_target})))
    })
    .await
}

pub async fn list(
    State(app): State<Shared>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PathQuery>,
) -> Result<Json<Value>, ApiError> {
    let name = parse_id(&id)?;
    let path = guest_path(&q.path)?;
    let home = app.home.clone();
    blocking(move || {
        let entries = mvm_runtime::call::list(&home, &name, &path)?;
        let entries: Vec<Value> = entries
            .iter()
            .map(|e| json!({"name": e.name, "kind": kind_str(&e.kind), "size": e.size}))
            .collect();
        Ok(Json(json!({"path": path, "entries": entries})))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MkdirBody {
    path: String,
}

pub async fn mkdir(
    State(app): State<Shared>,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let name = parse_id(&id)?;
    let b: MkdirBody = body.parse()?;
    let path = guest_path(&b.path)?;
    let home = app.home.clone();
    blocking(move || {
        guest(&home, &name, &["mkdir", "-p", "--", &path])?;
        Ok(Json(json!({"path": path})))
    })
    .await
}

pub async fn remove(
    State(app): State<Shared>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PathQuery>,
) -> Result<Json<Value>, ApiError> {
    let name = parse_id(&id)?;
    let path = guest_path(&q.path)?;
    if path.trim_end_matches('/').is_empty() {
        return Err(ApiError::bad_request(
            "refusing to remove the guest's root directory",
            "name what to remove",
        ));
    }
    let home = app.home.clone();
    blocking(move || {
        // Missing is 404, as for every other file request.
        mvm_runtime::call::stat(&home, &name, &path)?;
        guest(&home, &name, &["rm", "-rf", "--", &path])?;
        Ok(Json(json!({"path": path, "removed": true})))
    })
    .await
}

pub async fn read(
    State(app): State<Shared>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PathQuery>,
) -> Result<Response, ApiError> {
    let name = parse_id(&id)?;
    let path = guest_path(&q.path)?;
    let (home, name2, path2) = (app.home.clone(), name.clone(), path.clone());
    let st = blocking(move || Ok(mvm_runtime::call::stat(&home, &name2, &path2)?)).await?;
    if st.kind != FileKind::File {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "E_FILE_KIND",
            format!("{path} is a {}, not a regular file", kind_str(&st.kind)),
            "list a directory with GET .../files/list?path=...; read a link's target by its own path",
        ));
    }
    let (tx, rx) = mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(16);
    let home = app.home.clone();
    tokio::task::spawn_blocking(move || {
        let mut sink = ChannelWriter(tx.clone());
        // A failure mid-stream can only end the body early; the length
        // header makes the client see that as an error.
        if let Err(e) = mvm_runtime::call::download(&home, &name, &path, &mut sink) {
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let stream =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/octet-stream")],
        Body::from_stream(stream),
    )
        .into_response();
    // The guest sends exactly this many bytes (call::download), so a body
    // cut short is an error the client sees.
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, st.size.into());
    Ok(response)
}

/// Bytes written to it become body chunks.
struct ChannelWriter(mpsc::Sender<Result<bytes::Bytes, std::io::Error>>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(bytes::Bytes::copy_from_slice(b)))
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
            })?;
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Body chunks read as a byte stream, on a blocking thread.
struct ChannelReader {
    rx: mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>,
    current: bytes::Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.current = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

pub async fn write(
    State(app): State<Shared>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PathQuery>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let name = parse_id(&id)?;
    let path = guest_path(&q.path)?;
    let mode = match &q.mode {
        Some(m) => u32::from_str_radix(m, 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .ok_or_else(|| {
                ApiError::bad_request(
                    format!("`mode` must be octal permission bits, got {m:?}"),
                    "e.g. mode=644",
                )
            })?,
        None => mvm_proto::DEFAULT_FILE_MODE,
    };
    let (tx, rx) = mpsc::channel(16);
    let mut stream = body.into_data_stream();
    let feed = tokio::spawn(async move {
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| std::io::Error::other(format!("reading the upload: {e}")));
            let stop = chunk.is_err();
            if tx.send(chunk).await.is_err() || stop {
                break;
            }
        }
    });
    let home = app.home.clone();
    let path2 = path.clone();
    let size = blocking(move || {
        let mut src = ChannelReader {
            rx,
            current: bytes::Bytes::new(),
        };
        Ok(mvm_runtime::call::upload(
            &home, &name, &path2, mode, &mut src,
        )?)
    })
    .await;
    feed.abort();
    Ok(Json(json!({"path": path, "size": size?})))
}
