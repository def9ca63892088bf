//! Base templates (`python-3.13`, ...): a sandbox created from one is the
//! workload `mvmctl compile --from-recording` makes of a recording of it,
//! built once and then found in the image store (and its template
//! snapshot) by every later create.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::ApiError;

/// The recording format's templates (docs/recording.md).
pub const BASE_TEMPLATES: &[&str] = &[
    "python-3.13",
    "python-3.11",
    "node-22",
    "node-20",
    "minimal",
];

/// The command a base-template sandbox's image runs as its service: it
/// only keeps the sandbox alive; the caller's commands do the work.
const KEEP_ALIVE: &[&str] = &["sleep", "infinity"];

/// Serializes builds of the same recording: two creates at once build
/// one image, not two.
#[derive(Default)]
pub struct Builds {
    locks: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

impl Builds {
    fn lock(&self, key: &str) -> Arc<Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(key.to_string()).or_default().clone()
    }
}

/// The image id for a sandbox of `recording` (the SDK's sandbox object,
/// without operations) with `include`s relative to `source_root`:
/// compiled and built by `mvmctl` exactly as a recording file would be.
pub fn image_for(
    mvmctl: &Path,
    home: &Path,
    builds: &Builds,
    template: &str,
    recording: Option<&Value>,
    source_root: Option<&Path>,
) -> Result<String, ApiError> {
    let mut sandbox = match recording {
        Some(Value::Object(m)) => Value::Object(m.clone()),
        Some(_) => {
            return Err(ApiError::bad_request(
                "`recording` must be an object (docs/recording.md, a sandbox without operations)",
                "send the SDK's recorded sandbox, or leave it out",
            ));
        }
        None => json!({
            "template": template,
            "env": {},
            "include": [],
            // The SDKs' defaults (sdk/python/src/mvm/_spec.py).
            "resources": {"cpu_cores": 1, "memory_mb": 256, "rootfs_size_mb": 512},
            "network": {"mode": "none", "ports": [], "egress": {"allowlist": []}, "dns": {"kind": "none"}},
        }),
    };
    let obj = sandbox.as_object_mut().expect("an object");
    if obj.get("template").and_then(Value::as_str) != Some(template) {
        return Err(ApiError::bad_request(
            format!("`recording.template` must be `{template}`, the sandbox's template"),
            "send the same template in both places",
        ));
    }
    if obj.contains_key("operations") {
        return Err(ApiError::bad_request(
            "`recording` must not hold operations: a live sandbox runs them itself",
            "leave `operations` out",
        ));
    }
    obj.insert(
        "operations".into(),
        json!([{"op": "run", "cmd": KEEP_ALIVE, "background": true}]),
    );
    let includes = obj
        .get("include")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let root = match source_root {
        Some(r) if r.is_absolute() => r.to_path_buf(),
        Some(r) => {
            return Err(ApiError::bad_request(
                format!(
                    "`source_root` must be an absolute path, got {}",
                    r.display()
                ),
                "send the script's directory as an absolute path",
            ));
        }
        None if includes => {
            return Err(ApiError::bad_request(
                "`include` needs `source_root`, the directory its paths are relative to",
                "send the script's directory",
            ));
        }
        // Nothing is bundled from it: an empty private directory.
        None => PathBuf::new(),
    };
    let work = tempfile::Builder::new()
        .prefix("create-")
        .tempdir_in(ensure_work_dir(home)?)
        .map_err(|e| ApiError::internal(format!("making a work directory: {e}")))?;
    let root = if root.as_os_str().is_empty() {
        // One fixed, empty directory: the compile output (and so the
        // image id) depends on the root, and must not change per create.
        let empty = home.join("api").join("empty-root");
        mvm_runtime::private::create_dir_all(&empty)
            .map_err(|e| ApiError::internal(format!("making {}: {e}", empty.display())))?;
        empty
    } else {
        root
    };
    let document = json!({
        "recording_version": 1,
        "sdk": {"language": "python", "version": env!("CARGO_PKG_VERSION")},
        "source_root": root,
        "sandboxes": [sandbox],
    });
    let key = {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(document.to_string().as_bytes());
        format!("{:x}", h.finalize())
    };
    let rec = work.path().join("recording.json");
    std::fs::write(&rec, document.to_string())
        .map_err(|e| ApiError::internal(format!("writing {}: {e}", rec.display())))?;
    let out = work.path().join("compiled");
    let lock = builds.lock(&key);
    let _held = lock.lock().unwrap_or_else(|e| e.into_inner());
    let name = format!("sandbox-{}", template.replace('.', "-"));
    // Named relative to the work directory: the compile output records
    // where its recording came from, and that must not vary per create
    // (it is part of the image id).
    run_mvmctl(
        mvmctl,
        home,
        work.path(),
        &[
            "compile".as_ref(),
            "--from-recording".as_ref(),
            "recording.json".as_ref(),
            "--source-root".as_ref(),
            root.as_os_str(),
            "--name".as_ref(),
            name.as_ref(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
        "E_TEMPLATE_COMPILE",
    )?;
    let built = run_mvmctl(
        mvmctl,
        home,
        work.path(),
        &["build".as_ref(), out.as_os_str(), "--json".as_ref()],
        "E_TEMPLATE_BUILD",
    )?;
    let meta: Value = serde_json::from_str(&built).map_err(|e| {
        ApiError::internal(format!(
            "`mvmctl build --json` printed something else ({e})"
        ))
    })?;
    meta.get("image_id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ApiError::internal("`mvmctl build --json` printed no image_id"))
}

fn ensure_work_dir(home: &Path) -> Result<PathBuf, ApiError> {
    let dir = home.join("api").join("work");
    mvm_runtime::private::create_dir_all(&dir)
        .map_err(|e| ApiError::internal(format!("making {}: {e}", dir.display())))?;
    Ok(dir)
}

/// Runs `mvmctl ARGS` with this server's home; its stdout, or its error
/// (the compiler's findings name the recording's JSON pointers).
fn run_mvmctl(
    mvmctl: &Path,
    home: &Path,
    cwd: &Path,
    args: &[&std::ffi::OsStr],
    code: &str,
) -> Result<String, ApiError> {
    let output = Command::new(mvmctl)
        .args(args)
        .env("MVM_HOME", home)
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| ApiError::internal(format!("running {}: {e}", mvmctl.display())))?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let what = args.first().and_then(|a| a.to_str()).unwrap_or("mvmctl");
    Err(ApiError::new(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        code,
        format!(
            "`mvmctl {what}` of the sandbox's recording failed: {}",
            stderr.trim()
        ),
        "the message names the recording field at fault (docs/recording.md)",
    ))
}
