//! `/v1/sandboxes`: create, list, get, kill, pause, resume, timeout,
//! snapshot, fork and invoke. A sandbox is an mvm instance; its id is the
//! instance name.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mvm_runtime::InstanceName;
use mvm_runtime::admission::AdmissionRequest;
use mvm_runtime::home::InstanceDir;
use mvm_runtime::state::{InstanceState, Lease, LeaseAction};
use mvm_runtime::up::{StartChoice, UpOptions};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::JsonBody;
use crate::records::{self, Record};
use crate::templates::{self, BASE_TEMPLATES};
use crate::{ApiError, Shared, blocking};

/// A sandbox's TTL when the create asks for none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// The longest TTL a create may ask for (a day); longer-lived instances
/// are what `mvmctl up` is for.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(86_400);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSandbox {
    pub template: String,
    #[serde(default)]
    pub recording: Option<Value>,
    #[serde(default)]
    pub source_root: Option<PathBuf>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub envs: BTreeMap<String, String>,
    #[serde(default)]
    pub timeout: Option<f64>,
    #[serde(default)]
    pub on_timeout: Option<LeaseAction>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Sandbox {
    pub id: String,
    pub status: String,
    pub template: String,
    pub image_id: String,
    pub started_by: Option<String>,
    pub created_unix_ms: u64,
    pub timeout: Option<f64>,
    pub on_timeout: Option<&'static str>,
    pub expires_unix_ms: Option<u64>,
    pub metadata: BTreeMap<String, String>,
    pub envs: BTreeMap<String, String>,
}

pub fn parse_id(id: &str) -> Result<InstanceName, ApiError> {
    InstanceName::parse(id).map_err(ApiError::from)
}

/// A duration in seconds from the API (a number, fractions allowed).
pub fn seconds(what: &str, s: f64, max: Duration) -> Result<Duration, ApiError> {
    if !s.is_finite() || s <= 0.0 || s > max.as_secs_f64() {
        return Err(ApiError::bad_request(
            format!(
                "`{what}` must be a number of seconds above 0 and at most {}, got {s}",
                max.as_secs()
            ),
            "e.g. 300 for five minutes",
        ));
    }
    Ok(Duration::from_secs_f64(s))
}

/// The instance's record and what the API keeps about it.
fn load(home: &std::path::Path, name: &InstanceName) -> Result<(InstanceState, Record), ApiError> {
    let dir = InstanceDir::new(home, name.clone());
    if !dir.dir.is_dir() {
        return Err(mvm_runtime::RuntimeError::NoSuchInstance {
            name: name.to_string(),
        }
        .into());
    }
    let st = InstanceState::load(&dir.state_json())?;
    let rec = records::load(home, name, st.created_unix_ms);
    Ok((st, rec))
}

/// The sandbox as the API shows it.
pub fn describe(home: &std::path::Path, name: &InstanceName) -> Result<Sandbox, ApiError> {
    let (st, rec) = load(home, name)?;
    Ok(from_state(&st, rec))
}

/// The API's record of an existing instance.
pub fn describe_record(home: &std::path::Path, name: &InstanceName) -> Result<Record, ApiError> {
    load(home, name).map(|(_, rec)| rec)
}

fn from_state(st: &InstanceState, rec: Record) -> Sandbox {
    Sandbox {
        id: st.name.to_string(),
        status: st.observe().as_str().to_string(),
        template: if rec.template.is_empty() {
            st.image.name.clone()
        } else {
            rec.template
        },
        image_id: st.image.id.clone(),
        started_by: st.started_by.clone(),
        created_unix_ms: st.created_unix_ms,
        timeout: st.lease.map(|l| l.timeout_ms as f64 / 1000.0),
        on_timeout: st.lease.map(|l| l.on_expiry.as_str()),
        expires_unix_ms: st.lease.and_then(|l| l.expires_unix_ms),
        metadata: rec.metadata,
        envs: rec.envs,
    }
}

pub async fn list(State(app): State<Shared>) -> Result<Json<Value>, ApiError> {
    let home = app.home.clone();
    blocking(move || {
        let mut out = Vec::new();
        for (dir, st) in mvm_runtime::state::list(&home)? {
            // A record being written or removed right now is skipped.
            if let Ok(st) = st {
                let rec = records::load(&home, &dir.name, st.created_unix_ms);
                out.push(from_state(&st, rec));
            }
        }
        Ok(Json(serde_json::json!({ "sandboxes": out })))
    })
    .await
}

pub async fn get(
    State(app): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Sandbox>, ApiError> {
    let name = parse_id(&id)?;
    let home = app.home.clone();
    blocking(move || describe(&home, &name).map(Json)).await
}

fn random_id() -> InstanceName {
    let n: u32 = rand::random();
    InstanceName::parse(&format!("sb-{n:08x}")).expect("a valid name")
}

pub async fn create(
    State(app): State<Shared>,
    remote: Option<axum::Extension<crate::auth::Remote>>,
    body: JsonBody,
) -> Result<(StatusCode, Json<Sandbox>), ApiError> {
    let req: CreateSandbox = body.parse()?;
    if remote.is_some() && (req.source_root.is_some() || req.template.contains('/')) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "E_API_FORBIDDEN",
            "a request over TCP may not name paths on the server's host (`source_root`, or a compiled directory as `template`)",
            "use the unix socket on that host, or create from an image id, a workload name, a snapshot tag or a base template without `include`",
        ));
    }
    // Nor declare secrets: with a grant to a host of its choosing, the
    // host would release a stored secret there. Secrets are bound by the
    // operator (images they built, or the unix socket).
    let declares_secret = req
        .recording
        .as_ref()
        .and_then(|r| r.get("env"))
        .and_then(Value::as_object)
        .is_some_and(|env| {
            env.values()
                .any(|v| v.get("kind").and_then(Value::as_str) != Some("literal"))
        });
    if remote.is_some() && declares_secret {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "E_API_FORBIDDEN",
            "a request over TCP may not declare secrets: the server's host would release them to destinations the request chooses",
            "declare them in a workload the operator builds (mvmctl compile/build) and create from its image, or use the unix socket",
        ));
    }
    let timeout = seconds(
        "timeout",
        req.timeout.unwrap_or(DEFAULT_TIMEOUT.as_secs_f64()),
        MAX_TIMEOUT,
    )?;
    let lease = Lease {
        timeout_ms: timeout.as_millis() as u64,
        on_expiry: req.on_timeout.unwrap_or_default(),
        expires_unix_ms: None,
    };
    let name = match &req.id {
        Some(id) => parse_id(id)?,
        None => random_id(),
    };
    for key in req.envs.keys() {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            return Err(ApiError::bad_request(
                format!("`envs` has an invalid variable name {key:?}"),
                "names are non-empty, without `=` or NUL",
            ));
        }
    }
    let app2 = app.clone();
    let started = Instant::now();
    let sandbox = blocking(move || {
        let app = app2;
        let home = &app.home;
        let admission = Some(AdmissionRequest::from_home(home)?);
        // From before the boot assets and a base template's build until
        // the instance's record names what it uses: removals refuse.
        let _store = mvm_runtime::store::hold(home)?;
        let boot = app.boot_assets()?;
        let base = BASE_TEMPLATES.contains(&req.template.as_str());
        if !base && (req.recording.is_some() || req.source_root.is_some()) {
            return Err(ApiError::bad_request(
                format!("`{}` is not a base template, so `recording` and `source_root` cannot apply: a snapshot, image or compiled directory carries its own declaration", req.template),
                format!("base templates are {}", BASE_TEMPLATES.join(", ")),
            ));
        }
        let outcome = if !base && is_snapshot(home, &req.template) {
            let opts = mvm_runtime::lifecycle::ForkOptions {
                name: Some(name.clone()),
                supervisor: app.supervisor.clone(),
                admission,
                ready_timeout: None,
                lease: Some(lease),
            };
            mvm_runtime::lifecycle::up_from_snapshot(home, &req.template, &boot, &opts)
        } else {
            let image_id = if base {
                templates::image_for(&app.mvmctl, home, &app.builds, &req.template, req.recording.as_ref(), req.source_root.as_deref())?
            } else {
                req.template.clone()
            };
            mvm_runtime::image::resolve(home, &image_id).and_then(|image| {
                let opts = UpOptions {
                    name: Some(name.clone()),
                    ready_timeout: mvm_runtime::up::DEFAULT_READY_TIMEOUT,
                    supervisor: app.supervisor.clone(),
                    admission,
                    network: Default::default(),
                    broker: Default::default(),
                    start: StartChoice::Auto,
                    lease: Some(lease),
                };
                mvm_runtime::up::up_image(home, image, &boot, &opts)
            })
        };
        // Only once the instance is up, so a create that failed (a name
        // taken, a bad template) never touches another sandbox's record.
        outcome?;
        let record = Record {
            template: req.template.clone(),
            envs: req.envs.clone(),
            metadata: req.metadata.clone(),
            created_unix_ms: 0,
        };
        records::save(home, &name, &record)?;
        describe(home, &name)
    })
    .await?;
    let restored = sandbox
        .started_by
        .as_deref()
        .is_some_and(|s| s != "boot" && !s.starts_with("boot "));
    app.metrics.observe_create(started.elapsed(), restored);
    Ok((StatusCode::CREATED, Json(sandbox)))
}

fn is_snapshot(home: &std::path::Path, tag: &str) -> bool {
    mvm_runtime::snapshot::parse_tag(tag)
        .is_ok_and(|t| mvm_runtime::snapshot::tagged_root(home).join(t).is_dir())
}

pub async fn kill(
    State(app): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let name = parse_id(&id)?;
    let home = app.home.clone();
    app.commands.forget_sandbox(&name);
    blocking(move || {
        mvm_runtime::down::down(&home, &name, mvm_runtime::down::DEFAULT_GRACE)?;
        records::remove(&home, &name);
        Ok(Json(
            serde_json::json!({"id": name.to_string(), "killed": true}),
        ))
    })
    .await
}

pub async fn pause(
    State(app): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Sandbox>, ApiError> {
    let name = parse_id(&id)?;
    let home = app.home.clone();
    blocking(move || {
        mvm_runtime::lifecycle::pause(&home, &name)?;
        describe(&home, &name).map(Json)
    })
    .await
}

pub async fn resume(
    State(app): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Sandbox>, ApiError> {
    let name = parse_id(&id)?;
    let app2 = app.clone();
    let started = Instant::now();
    let sb = blocking(move || {
        mvm_runtime::lifecycle::resume(
            &app2.home,
            &name,
            &app2.supervisor,
            mvm_runtime::up::DEFAULT_READY_TIMEOUT,
        )?;
        describe(&app2.home, &name).map(Json)
    })
    .await?;
    app.metrics.observe_restore(started.elapsed());
    Ok(sb)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Renew {
    timeout: f64,
}

pub async fn set_timeout(
    State(app): State<Shared>,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Sandbox>, ApiError> {
    let name = parse_id(&id)?;
    let r: Renew = body.parse()?;
    let timeout = seconds("timeout", r.timeout, MAX_TIMEOUT)?;
    let home = app.home.clone();
    blocking(move || {
        mvm_runtime::call::renew(&home, &name, timeout)?;
        describe(&home, &name).map(Json)
    })
    .await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SnapshotBody {
    #[serde(default)]
    tag: Option<String>,
}

fn random_tag(id: &InstanceName) -> String {
    let n: u32 = rand::random();
    format!("{id}-{n:08x}")
}

pub async fn snapshot(
    State(app): State<Shared>,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let name = parse_id(&id)?;
    let b: SnapshotBody = body.parse_or_default()?;
    let tag = b.tag.unwrap_or_else(|| random_tag(&name));
    let home = app.home.clone();
    blocking(move || {
        let out = mvm_runtime::lifecycle::snapshot(&home, &name, &tag)?;
        Ok(Json(
            serde_json::json!({"tag": out.tag, "bytes": out.bytes}),
        ))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForkBody {
    #[serde(default = "one")]
    count: u32,
    #[serde(default)]
    timeout: Option<f64>,
}

fn one() -> u32 {
    1
}

impl Default for ForkBody {
    fn default() -> ForkBody {
        ForkBody {
            count: 1,
            timeout: None,
        }
    }
}

/// The most forks one request makes.
pub const MAX_FORKS: u32 = 16;

pub async fn fork(
    State(app): State<Shared>,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = parse_id(&id)?;
    let b: ForkBody = body.parse_or_default()?;
    if b.count == 0 || b.count > MAX_FORKS {
        return Err(ApiError::bad_request(
            format!("`count` must be 1 to {MAX_FORKS}, got {}", b.count),
            "fork in several requests for more",
        ));
    }
    let timeout = seconds(
        "timeout",
        b.timeout.unwrap_or(DEFAULT_TIMEOUT.as_secs_f64()),
        MAX_TIMEOUT,
    )?;
    let app2 = app.clone();
    let started = Instant::now();
    let out = blocking(move || {
        let app = app2;
        let home = &app.home;
        let source = describe_record(home, &name)?;
        let tag = random_tag(&name);
        mvm_runtime::lifecycle::snapshot(home, &name, &tag)?;
        let boot = app.boot_assets();
        let mut forks = Vec::new();
        let mut started: Vec<InstanceName> = Vec::new();
        let result = boot.and_then(|boot| {
            for _ in 0..b.count {
                let fork = random_id();
                let opts = mvm_runtime::lifecycle::ForkOptions {
                    name: Some(fork.clone()),
                    supervisor: app.supervisor.clone(),
                    admission: Some(AdmissionRequest::from_home(home)?),
                    ready_timeout: None,
                    lease: Some(Lease {
                        timeout_ms: timeout.as_millis() as u64,
                        on_expiry: LeaseAction::Kill,
                        expires_unix_ms: None,
                    }),
                };
                mvm_runtime::lifecycle::up_from_snapshot(home, &tag, &boot, &opts)?;
                started.push(fork.clone());
                records::save(
                    home,
                    &fork,
                    &Record {
                        template: tag.clone(),
                        created_unix_ms: 0,
                        ..source.clone()
                    },
                )?;
                forks.push(describe(home, &fork)?);
            }
            Ok(())
        });
        // A restored QEMU holds the guest's memory and its own disk copy:
        // the snapshot is not needed once the forks run.
        if let Err(e) = mvm_runtime::snapshot::remove(home, &tag) {
            tracing::warn!("removing the fork snapshot {tag}: {e}");
        }
        if let Err(e) = result {
            // All or nothing: forks started before the failure go too.
            for fork in &started {
                let _ = mvm_runtime::down::down(home, fork, mvm_runtime::down::DEFAULT_GRACE);
                records::remove(home, fork);
            }
            return Err(e);
        }
        Ok(serde_json::json!({"tag": tag, "sandboxes": forks}))
    })
    .await?;
    app.metrics.observe_restore(started.elapsed());
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InvokeBody {
    #[serde(default)]
    entrypoint: Option<String>,
    #[serde(default)]
    args: Map<String, Value>,
}

pub async fn invoke(
    State(app): State<Shared>,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Json<Value>, ApiError> {
    let name = parse_id(&id)?;
    let b: InvokeBody = body.parse()?;
    let home = app.home.clone();
    let started = Instant::now();
    let out = blocking(move || {
        let outcome = mvm_runtime::call::invoke(&home, &name, b.entrypoint, b.args)?;
        Ok(match outcome {
            mvm_runtime::call::InvokeOutcome::Value(value) => serde_json::json!({"value": value}),
            mvm_runtime::call::InvokeOutcome::Error { kind, message, traceback } => {
                serde_json::json!({"function_error": {"kind": kind, "message": message, "traceback": traceback}})
            }
        })
    })
    .await?;
    app.metrics.observe_invoke(started.elapsed());
    Ok(Json(out))
}
