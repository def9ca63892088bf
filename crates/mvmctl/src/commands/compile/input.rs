//! Turning `mvmctl compile`'s input arguments into a [`CompileRequest`]:
//! which front end reads the input, and which directory the app's relative
//! `source.path` is resolved against.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use mvm_compile::CompileRequest;
use mvm_ir::Finding;

use super::host_run::{self, HostRun};

/// What the user asked to compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Workload IR in a file.
    IrFile(PathBuf),
    /// Workload IR on stdin (`-`).
    IrStdin,
    /// A Python or TypeScript declaration for the static front end.
    Declaration(PathBuf),
    /// A runtime SDK recording (`--from-recording`).
    Recording(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read Workload IR from stdin: {0}")]
    Stdin(std::io::Error),
    #[error("{}: not a declaration or Workload IR file", .0.display())]
    UnknownKind(PathBuf),
    #[error("SOURCE_DATE_EPOCH must be a whole number of seconds since 1970 up to {max}, got `{0}`", max = mvm_compile::MAX_MTIME)]
    SourceDateEpoch(String),
    #[error("the input was rejected")]
    Rejected(Vec<Finding>),
    #[error("{}: recording it failed: {source}", .path.display())]
    Autorun {
        path: PathBuf,
        source: mvm_recording::autorun::AutorunError,
    },
}

impl InputError {
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            InputError::Read { .. } => {
                Some("check the path; relative paths are taken from the current directory")
            }
            InputError::Stdin(_) => Some("pipe Workload IR JSON into `mvmctl compile -`"),
            InputError::UnknownKind(_) => Some(
                "pass a Python (.py) or TypeScript (.ts, .mts) declaration, Workload IR (.json), \
                 or - for IR on stdin; use --from-ir FILE for IR in a file with another extension",
            ),
            InputError::SourceDateEpoch(_) => {
                Some("unset it, or set it to e.g. `$(git log -1 --format=%ct)`")
            }
            InputError::Rejected(_) | InputError::Autorun { .. } => None,
        }
    }
}

/// Classify the positional input by its extension.
pub fn classify(path: &Path) -> Result<Input, InputError> {
    if path == Path::new("-") {
        return Ok(Input::IrStdin);
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => Ok(Input::IrFile(path.to_path_buf())),
        Some("py" | "ts" | "mts") => Ok(Input::Declaration(path.to_path_buf())),
        _ => Err(InputError::UnknownKind(path.to_path_buf())),
    }
}

/// `--from-ir FILE`: IR whatever the extension, `-` for stdin.
pub fn from_ir(path: &Path) -> Input {
    if path == Path::new("-") {
        Input::IrStdin
    } else {
        Input::IrFile(path.to_path_buf())
    }
}

/// Read and lower the input. `source_root` overrides where `source.path`
/// is resolved from: by default the IR file's or declaration's directory,
/// and the current directory for IR on stdin. `host_run` says whether a
/// TypeScript recording script may be run to record it.
pub fn load(
    input: &Input,
    source_root: Option<&Path>,
    recording: &mvm_recording::LowerOptions,
    host_run: &HostRun,
) -> Result<CompileRequest, InputError> {
    let root = |default: PathBuf| source_root.map_or(default, Path::to_path_buf);
    match input {
        Input::Recording(path) => {
            let text = read(path)?;
            from_recording(
                &text,
                recording,
                source_root,
                &directory_of(path),
                format!("recording:{}", path.display()),
            )
        }
        Input::IrStdin => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(InputError::Stdin)?;
            ir(&text, root(PathBuf::from(".")), "ir:-".to_string())
        }
        Input::IrFile(path) => {
            let text = read(path)?;
            ir(
                &text,
                root(directory_of(path)),
                format!("ir:{}", path.display()),
            )
        }
        Input::Declaration(path) => {
            let text = read(path)?;
            declaration(
                path,
                &text,
                root(directory_of(path)),
                recording,
                source_root,
                host_run,
            )
        }
    }
}

/// Lower a declaration statically (nothing in it is run). A TypeScript
/// recording script goes to [`host_run::record`], which runs it only if allowed.
fn declaration(
    path: &Path,
    text: &str,
    source_root: PathBuf,
    recording: &mvm_recording::LowerOptions,
    root_override: Option<&Path>,
    host_run: &HostRun,
) -> Result<CompileRequest, InputError> {
    let outcome = mvm_decl::compile_declaration(path, text, &module_path(path, &source_root))
        .map_err(InputError::Rejected)?;
    let declared = match outcome {
        mvm_decl::Outcome::Declared(d) => d,
        mvm_decl::Outcome::SandboxScript { at } => {
            return host_run::record(path, at, host_run, recording, root_override);
        }
    };
    let lang = match mvm_decl::lang_for_path(path) {
        Some(mvm_decl::Lang::Python) => "python",
        _ => "typescript",
    };
    Ok(CompileRequest {
        workload: declared.workload,
        source_root,
        spans: declared.spans,
        findings: declared.findings,
        origin: format!("{lang}:{}", path.display()),
        extra_files: Default::default(),
    })
}

/// The declaration's path below the source root, which names its default
/// entrypoint module (`src/tool.py` → `src.tool`); just its file name when
/// it lies elsewhere.
fn module_path(path: &Path, source_root: &Path) -> PathBuf {
    let file_name = || PathBuf::from(path.file_name().unwrap_or_default());
    match (path.canonicalize(), source_root.canonicalize()) {
        (Ok(file), Ok(root)) => file
            .strip_prefix(&root)
            .map_or_else(|_| file_name(), Path::to_path_buf),
        _ => file_name(),
    }
}

/// Lower a recording (docs/recording.md) into a compile request; its
/// written files join the source bundle. Its `source_root` is used only
/// inside `boundary` (the recording's or auto-run script's directory);
/// `--source-root` replaces it.
pub(super) fn from_recording(
    text: &str,
    opts: &mvm_recording::LowerOptions,
    root_override: Option<&Path>,
    boundary: &Path,
    origin: String,
) -> Result<CompileRequest, InputError> {
    let rec = mvm_recording::decode(text).map_err(|e| {
        InputError::Rejected(vec![Finding::new(
            mvm_ir::Code::ESchema,
            e.pointer,
            e.message,
            "the file must be a recording written by an mvm SDK in record mode (docs/recording.md)",
        )])
    })?;
    let lowered = mvm_recording::lower(&rec, opts).map_err(InputError::Rejected)?;
    let source_root = match root_override {
        Some(dir) => dir.to_path_buf(),
        None => mvm_recording::lower::confine_root(&lowered.source_root, boundary)
            .map_err(|f| InputError::Rejected(vec![f]))?,
    };
    Ok(CompileRequest {
        workload: lowered.workload,
        source_root,
        spans: BTreeMap::new(),
        findings: Vec::new(),
        origin,
        extra_files: lowered.files,
    })
}

fn ir(text: &str, source_root: PathBuf, origin: String) -> Result<CompileRequest, InputError> {
    let workload = mvm_ir::decode::from_str(text).map_err(InputError::Rejected)?;
    Ok(CompileRequest {
        workload,
        source_root,
        spans: BTreeMap::new(),
        findings: Vec::new(),
        origin,
        extra_files: BTreeMap::new(),
    })
}

fn read(path: &Path) -> Result<String, InputError> {
    std::fs::read_to_string(path).map_err(|source| InputError::Read {
        path: path.to_path_buf(),
        source,
    })
}

pub(super) fn directory_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}
