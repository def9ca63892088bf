//! Everything an image build or a store lookup can fail with.

use std::path::PathBuf;

use crate::table::ResolveError;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a compile output: {detail}. Produce one with `mvmctl compile ... --out DIR`"
    )]
    NotCompiled { path: PathBuf, detail: String },
    #[error(
        "{path}: {detail}. The compile output was changed after compile; run `mvmctl compile` again"
    )]
    Checksum { path: PathBuf, detail: String },
    #[error("{path}: {detail}")]
    BadLaunch { path: PathBuf, detail: String },
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(
        "no Debian mirror in the host's apt sources (/etc/apt/sources.list, /etc/apt/sources.list.d/); \
         set MVM_DEBIAN_MIRROR to a Debian mirror URL"
    )]
    NoMirror,
    #[error("`{tool}` is needed to build images but could not be run ({detail}); {hint}")]
    MissingTool {
        tool: &'static str,
        detail: String,
        hint: &'static str,
    },
    #[error("{step} failed ({status}); build log {log}, last lines:\n{tail}")]
    Step {
        step: String,
        status: String,
        log: PathBuf,
        tail: String,
    },
    #[error("wheel {file}: {detail}")]
    Wheel { file: PathBuf, detail: String },
    #[error(
        "{what} runs inside the builder microVM behind the egress gate, which this caller cannot serve \
         (no gate program was given); nothing runs on the host instead. Build with `mvmctl build`"
    )]
    NeedsBuilderVm { what: String },
    #[error("dependency lockfile {path}: {detail}")]
    Lockfile { path: PathBuf, detail: String },
    #[error("builder microVM: {detail}")]
    Builder { detail: String },
    #[error(
        "SOURCE_DATE_EPOCH={value:?} is not a time mvm can clamp images to; \
         hint: give whole seconds since 1970, before 2038 (or unset it for the default, 2024-01-01)"
    )]
    BadEpoch { value: String },
    /// `build --locked`: what the lock records cannot be had again.
    #[error("--locked {lock}: {what}: {detail}; hint: {hint}")]
    Locked {
        lock: PathBuf,
        what: String,
        detail: String,
        hint: String,
    },
    #[error("image tree: {0}")]
    Tree(#[from] crate::tree::TreeError),
    #[error("merging the builder's writes: {0}")]
    Upper(#[from] crate::upper::UpperError),
    #[error("image `{target}` not found in {store}: {hint}")]
    NotFound {
        target: String,
        store: PathBuf,
        hint: String,
    },
}

impl ImageError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ImageError {
        let path = path.into();
        move |source| ImageError::Io { path, source }
    }
}
