//! Every way an instance operation can fail, each with a message that says
//! what happened and what to do about it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "`{name}` is not a valid instance name: use lowercase letters, digits and '-', starting with a letter, at most 63 characters"
    )]
    InvalidName { name: String },

    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },

    #[error(
        "the instance record {path} is unreadable ({detail}); remove the instance with `mvmctl down` and start it again"
    )]
    CorruptState { path: PathBuf, detail: String },

    #[error("{detail}\n  hint: {hint}")]
    BadInput { detail: String, hint: String },

    #[error(
        "an instance named `{name}` is already running\n  hint: pick another name with --name, or stop it first with `mvmctl down {name}`"
    )]
    AlreadyRunning { name: String },

    #[error(
        "an instance named `{name}` exists but is {status}\n  hint: clean it up with `mvmctl down {name}`, then run `mvmctl up` again"
    )]
    AlreadyExists { name: String, status: String },

    #[error(
        "no instance named `{name}`\n  hint: `mvmctl ps` lists instances; start one with `mvmctl up`"
    )]
    NoSuchInstance { name: String },

    #[error("instance `{name}` is {status}, so it cannot {action}\n  hint: {hint}")]
    NotRunning {
        name: String,
        status: String,
        action: String,
        hint: String,
    },

    #[error("{detail}\n  hint: {hint}")]
    ImageNotFound { detail: String, hint: String },

    #[error(
        "the image's launch.json ({path}) cannot be used: {detail}\n  hint: rebuild the image with `mvmctl build`"
    )]
    BadLaunch { path: PathBuf, detail: String },

    #[error("cannot start the supervisor for `{name}` ({program}): {source}")]
    SpawnSupervisor {
        name: String,
        program: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "instance `{name}` did not become ready: {message}{}",
        tail_block(log_tail)
    )]
    UpFailed {
        name: String,
        message: String,
        log_tail: String,
    },

    #[error(
        "talking to the supervisor of `{name}` failed: {detail}\n  hint: `mvmctl ps` shows whether it is still running; `mvmctl logs {name}` shows the guest's console"
    )]
    Supervisor { name: String, detail: String },

    #[error(
        "cannot prepare the guest kernel and agent: {detail}\n  hint: `mvmctl doctor` checks what is missing"
    )]
    GuestAssets { detail: String },

    #[error(
        "instance `{name}` could not {action}: {message}\n  hint: `mvmctl logs {name}` shows the guest's console"
    )]
    Guest {
        name: String,
        action: String,
        message: String,
    },

    /// Admission refused the launch: a check of the policy or the plan.
    #[error("not admitted{}: {refusal}", plan.as_ref().map(|p| format!(" ({})", p.display())).unwrap_or_default())]
    Refused {
        plan: Option<PathBuf>,
        refusal: mvm_plan::Refusal,
    },

    /// The policy, a plan or the host's trust stores could not be read.
    #[error("{0}")]
    Plan(#[from] mvm_plan::PlanError),

    /// The audit trail could not be written, so nothing unaudited runs.
    #[error(
        "writing the audit trail: {detail}\n  hint: check {dir} is writable by you, or set [audit] enabled = false in policy.toml"
    )]
    Audit { dir: PathBuf, detail: String },

    /// Admission: the workload names secrets the store does not hold.
    #[error(
        "the workload needs secrets that are not in the store: {}\n  hint: {}",
        names.join(", "),
        names.iter().map(|n| format!("mvmctl secret set {n}")).collect::<Vec<_>>().join("; ")
    )]
    SecretsMissing { names: Vec<String> },

    /// The secret store could not be read.
    #[error("the secret store: {detail}")]
    Secrets { detail: String },

    #[error("control channel: {detail}")]
    Control { detail: String },

    #[error(
        "no snapshot tagged `{tag}`\n  hint: `mvmctl snapshot list` lists snapshots; `mvmctl snapshot NAME TAG` takes one"
    )]
    NoSuchSnapshot { tag: String },

    #[error(
        "a snapshot tagged `{tag}` exists already\n  hint: pick another tag, or remove it with `mvmctl snapshot rm {tag}`"
    )]
    SnapshotExists { tag: String },

    /// A snapshot could not be saved, or is not one mvm will restore.
    #[error("snapshot: {detail}")]
    Snapshot { detail: String },

    #[error(
        "image {image} is used by {}\n  hint: remove those first, or pass --force to remove them with it",
        users.join(", ")
    )]
    ImageInUse { image: String, users: Vec<String> },

    #[error(
        "the image store is in use by a build or an `up` that is running\n  hint: try again when it has finished"
    )]
    StoreBusy,

    #[error("the image store: {detail}")]
    Store { detail: String },

    /// The guest refused a file request; `kind` is mvm-proto's error kind
    /// (`not_found`, `permission_denied`, `too_large`, ...).
    #[error("`{name}`: {message}\n  hint: `mvmctl exec {name} -- ls -la DIR` shows what is there")]
    GuestFile {
        name: String,
        kind: String,
        message: String,
    },
}

impl RuntimeError {
    /// A stable name for what went wrong, the same wherever the error is
    /// shown (the CLI's `error[CODE]`, the local API's `code`).
    pub fn code(&self) -> &'static str {
        use RuntimeError::*;
        match self {
            InvalidName { .. } | BadInput { .. } => "E_BAD_INPUT",
            Io { .. } => "E_IO",
            CorruptState { .. } => "E_CORRUPT_STATE",
            AlreadyRunning { .. } | AlreadyExists { .. } => "E_SANDBOX_EXISTS",
            NoSuchInstance { .. } => "E_SANDBOX_NOT_FOUND",
            NotRunning { .. } => "E_SANDBOX_STATE",
            ImageNotFound { .. } => "E_TEMPLATE_NOT_FOUND",
            BadLaunch { .. } => "E_BAD_LAUNCH",
            SpawnSupervisor { .. } => "E_SUPERVISOR_SPAWN",
            UpFailed { .. } => "E_UP_FAILED",
            Supervisor { .. } | Control { .. } => "E_SUPERVISOR",
            GuestAssets { .. } => "E_GUEST_ASSETS",
            Guest { .. } => "E_GUEST",
            Refused { .. } | Plan(_) => "E_POLICY_REFUSED",
            Audit { .. } => "E_AUDIT",
            SecretsMissing { .. } => "E_SECRETS_MISSING",
            Secrets { .. } => "E_SECRETS",
            NoSuchSnapshot { .. } => "E_TEMPLATE_NOT_FOUND",
            SnapshotExists { .. } => "E_SNAPSHOT_EXISTS",
            Snapshot { .. } => "E_SNAPSHOT",
            ImageInUse { .. } => "E_IMAGE_IN_USE",
            StoreBusy => "E_STORE_BUSY",
            Store { .. } => "E_STORE",
            GuestFile { kind, .. } if kind == "not_found" => "E_FILE_NOT_FOUND",
            GuestFile { kind, .. } if kind == "permission_denied" => "E_FILE_PERMISSION",
            GuestFile { kind, .. } if kind == "exists" => "E_FILE_EXISTS",
            GuestFile { kind, .. } if kind == "invalid_request" => "E_FILE_KIND",
            GuestFile { .. } => "E_FILE",
        }
    }
}

fn tail_block(tail: &str) -> String {
    if tail.trim().is_empty() {
        String::new()
    } else {
        format!("\n--- last lines of the console log ---\n{tail}")
    }
}
