//! Which front end reads an input, and turning it into a [`CompileRequest`]:
//! Workload IR (a file, or text on stdin), a declaration (read statically
//! by `mvm-decl`), a recording, or a TypeScript script that only uses the
//! SDK's `Sandbox`, recorded by running it on the host ([`host_run`], only
//! when the caller's policy allows). Also which directory the app's
//! relative `source.path` is resolved against, and the request's origin.
//!
//! The CLI parses its arguments into an [`Input`] and [`LoadOptions`], calls
//! [`load`] and prints what comes back; nothing here prints.
//!
//! Why here: this is the crate that sees every front end without a cycle.
//! It already sits above `mvm-compile` (the bundle's name rule, and the
//! [`CompileRequest`] every front end produces), and the TypeScript fallback
//! joins `mvm-decl`'s verdict to this crate's recording path. `mvm-compile`
//! could not host it without depending on both front ends, and with them
//! on the declaration parsers, which the image builder and the runtime
//! (both depend on `mvm-compile`) have no use for.

mod error;
pub mod host_run;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use mvm_compile::CompileRequest;
use mvm_ir::{Code, Finding};

use crate::lower::{self, LowerOptions};

pub use error::InputError;
pub use host_run::{ALLOW_HOST_RUN_ENV, HostRun, Notice};

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

/// Classifies a positional input by its extension: `-` is IR on stdin,
/// `.json` an IR file, and a declaration is what
/// [`mvm_decl::lang_for_path`] says is one (`.py`, `.ts`, `.mts`).
pub fn classify(path: &Path) -> Result<Input, InputError> {
    if path == Path::new("-") {
        return Ok(Input::IrStdin);
    }
    if path.extension().is_some_and(|e| e == "json") {
        return Ok(Input::IrFile(path.to_path_buf()));
    }
    match mvm_decl::lang_for_path(path) {
        Some(_) => Ok(Input::Declaration(path.to_path_buf())),
        None => Err(InputError::UnknownKind(path.to_path_buf())),
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

/// How to load an input: the caller's choices, passed in as plain values.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Resolve `source.path` against this directory (`--source-root`)
    /// instead of the IR file's or declaration's directory, the current
    /// directory for IR on stdin, or a recording's own `source_root`.
    pub source_root: Option<PathBuf>,
    /// Which sandbox of a recording, and the workload's name.
    pub recording: LowerOptions,
    /// Whether a TypeScript recording script may be run to record it.
    pub host_run: HostRun,
}

/// Reads and lowers `input`. IR on stdin is read from `stdin`; `notify`
/// hears what the user must be told while it loads (before a script runs
/// on the host, and after).
pub fn load(
    input: &Input,
    opts: &LoadOptions,
    stdin: &mut dyn Read,
    notify: &mut dyn FnMut(Notice),
) -> Result<CompileRequest, InputError> {
    let root = |default: PathBuf| opts.source_root.clone().unwrap_or(default);
    match input {
        Input::Recording(path) => {
            let text = read(path)?;
            from_recording(
                &text,
                &opts.recording,
                opts.source_root.as_deref(),
                &directory_of(path),
                format!("recording:{}", path.display()),
            )
        }
        Input::IrStdin => {
            let mut text = String::new();
            stdin.read_to_string(&mut text).map_err(InputError::Stdin)?;
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
            declaration(path, &text, root(directory_of(path)), opts, notify)
        }
    }
}

/// Lowers a declaration statically (nothing in it is run). A TypeScript
/// recording script goes to [`host_run::record`], which runs it only if allowed.
fn declaration(
    path: &Path,
    text: &str,
    source_root: PathBuf,
    opts: &LoadOptions,
    notify: &mut dyn FnMut(Notice),
) -> Result<CompileRequest, InputError> {
    let outcome = mvm_decl::compile_declaration(path, text, &module_path(path, &source_root))
        .map_err(InputError::Rejected)?;
    let declared = match outcome {
        mvm_decl::Outcome::Declared(d) => d,
        mvm_decl::Outcome::SandboxScript { at } => {
            return host_run::record(path, at, opts, notify);
        }
    };
    // compile_declaration read it, so it has a language; TypeScript is the
    // only other one.
    let lang = mvm_decl::lang_for_path(path).map_or("typescript", mvm_decl::Lang::as_str);
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

/// Lowers a recording (docs/recording.md) into a compile request; its
/// written files join the source bundle. Its `source_root` is used only
/// inside `boundary` (the recording's or auto-run script's directory);
/// `root_override` (`--source-root`) replaces it.
fn from_recording(
    text: &str,
    opts: &LowerOptions,
    root_override: Option<&Path>,
    boundary: &Path,
    origin: String,
) -> Result<CompileRequest, InputError> {
    let rec = crate::decode(text).map_err(|e| {
        InputError::Rejected(vec![Finding::new(
            Code::ESchema,
            e.pointer,
            e.message,
            "the file must be a recording written by an mvm SDK in record mode (docs/recording.md)",
        )])
    })?;
    let lowered = lower::lower(&rec, opts).map_err(InputError::Rejected)?;
    let source_root = match root_override {
        Some(dir) => dir.to_path_buf(),
        None => lower::confine_root(&lowered.source_root, boundary)
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

fn directory_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests;
