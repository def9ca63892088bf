//! Static declaration front ends: read a Python (`@mvm.app(...)`) or
//! TypeScript (`mvm.app({...})(fn)`) declaration file and produce Workload IR
//! **without importing, evaluating or running any of it**.
//!
//! Layout: [`python`] and [`typescript`] only walk their syntax trees and
//! build a language-neutral [`value`] tree; [`lower`] turns that into IR for
//! both (so equivalent files give byte-identical canonical IR); [`helpers`]
//! holds the helper allowlist and [`tables`] the defaults, accepted values,
//! aliases and lockfiles the lowering applies (which [`sdk_spec`] renders for
//! the SDKs); [`lang_for_path`] says which language a file
//! is in (its `lang` module is shared with [`lower`]); [`imports`] says which
//! local names are the SDK's; [`nesting`] refuses input nested deeper than
//! the parsers can take; [`span`] turns byte offsets into file:line:col.
//!
//! One entry point, [`compile_declaration`]: parse → lower →
//! [`mvm_ir::validate`] → every finding located at file:line:col (validation
//! findings are mapped through the nearest IR pointer the lowering recorded).
//!
//! TypeScript spelling: every helper is accepted under its snake_case name
//! and its camelCase alias (`localPath`, `pythonImage`, `dnsSystem`, ...), and
//! so is every option property (`memory_mb`/`memoryMb`, `allow_https`/
//! `allowHttps`, `before_start`/`beforeStart`). Keys of `env` and of port or
//! host dicts are data and are kept exactly as written.

pub mod diag;
pub mod helpers;
pub mod imports;
mod lang;
pub mod lower;
pub mod nesting;
pub mod python;
mod python_uses;
pub mod sdk_spec;
pub mod span;
pub mod tables;
pub mod typescript;
mod typescript_uses;
pub mod value;

use std::collections::BTreeMap;
use std::path::Path;

use mvm_ir::{Code, Finding, Location, Workload};

use crate::span::LineIndex;
use crate::value::Contents;

pub use lang::{Lang, lang_for_path};

/// A declaration compiled to IR.
#[derive(Debug)]
pub struct Declared {
    pub workload: Workload,
    /// IR JSON pointer → where in the file it came from.
    pub spans: BTreeMap<String, Location>,
    /// Warnings from validation (errors make compilation fail), located.
    pub findings: Vec<Finding>,
}

#[derive(Debug)]
pub enum Outcome {
    Declared(Declared),
    /// A TypeScript recording script: no declaration in any form (the SDK's
    /// `app` is not used anywhere), but its `Sandbox` is. Compiling it means
    /// running it on the host, which only an explicit opt-in may do. Any
    /// other file without a declaration is an `E_NO_DECLARATION` error.
    SandboxScript {
        /// The first use of `Sandbox`.
        at: Location,
    },
}

/// Compiles the declaration in `source` (read from `path`, which is used for
/// the language and in locations). `source_root_rel_path` is the file's path
/// relative to the source root; it names the default entrypoint module
/// (`src/tool.py` → `src.tool`).
///
/// `Err` holds every finding (errors and any warnings), each located; print
/// them with `Display` (`FILE:LINE:COL: error[CODE]: message` + `  hint: ...`).
///
/// Runs on its own thread with a [`nesting::PARSE_STACK`] stack, so how deep
/// the caller's stack is does not matter.
pub fn compile_declaration(
    path: &Path,
    source: &str,
    source_root_rel_path: &Path,
) -> Result<Outcome, Vec<Finding>> {
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("mvm-decl".into())
            .stack_size(nesting::PARSE_STACK)
            .spawn_scoped(scope, || compile_here(path, source, source_root_rel_path));
        match worker {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(e) => Err(vec![
                Finding::new(
                    Code::EDeclTooDeep,
                    "",
                    format!("cannot start the declaration reader (a thread with a {} MiB stack): {e}", nesting::PARSE_STACK >> 20),
                    "free some memory and retry; the reader needs its stack to refuse over-deep input safely",
                )
                .at(Location {
                    file: path.display().to_string(),
                    line: 1,
                    column: 1,
                }),
            ]),
        }
    })
}

fn compile_here(
    path: &Path,
    source: &str,
    source_root_rel_path: &Path,
) -> Result<Outcome, Vec<Finding>> {
    let file = path.display().to_string();
    let index = LineIndex::new(file.clone(), source);
    // Findings in file order, so the first one printed is the first in the file.
    let located = |mut diags: Vec<diag::Diag>| -> Vec<Finding> {
        diags.sort_by_key(|d| d.at);
        diags
            .into_iter()
            .map(|d| d.into_finding(&index, ""))
            .collect()
    };
    let Some(lang) = lang_for_path(path) else {
        return Err(vec![
            Finding::new(
                Code::ENoDeclaration,
                "",
                format!("{file} is not a declaration file"),
                "declarations are .py or .ts files; pass an IR file with --from-ir",
            )
            .at(Location {
                file,
                line: 1,
                column: 1,
            }),
        ]);
    };
    let parsed = match lang {
        Lang::Python => python::parse(source),
        Lang::TypeScript => typescript::parse(source),
    };
    let decl = match parsed.map_err(located)? {
        Contents::Declaration(decl) => *decl,
        Contents::SandboxScript { at } if lang == Lang::TypeScript => {
            return Ok(Outcome::SandboxScript {
                at: index.locate(at),
            });
        }
        other => {
            return Err(vec![
                no_declaration(lang, &file, &other).into_finding(&index, ""),
            ]);
        }
    };
    let lowered = lower::lower(&decl, lang, source_root_rel_path).map_err(located)?;
    let spans: BTreeMap<String, Location> = lowered
        .spans
        .iter()
        .map(|(p, at)| (p.clone(), index.locate(*at)))
        .collect();
    let fallback = index.locate(decl.app_at);
    let mut findings: Vec<Finding> = mvm_ir::validate(&lowered.workload)
        .into_iter()
        .map(|f| {
            let loc = nearest(&spans, &f.path).unwrap_or_else(|| fallback.clone());
            f.at(loc)
        })
        .collect();
    findings.sort_by(|a, b| (a.severity, &a.location).cmp(&(b.severity, &b.location)));
    if findings.iter().any(Finding::is_error) {
        return Err(findings);
    }
    Ok(Outcome::Declared(Declared {
        workload: lowered.workload,
        spans,
        findings,
    }))
}

/// Why a file holds nothing to compile statically, and what to do.
fn no_declaration(lang: Lang, file: &str, contents: &Contents) -> diag::Diag {
    let (message, hint) = match (lang, contents) {
        (Lang::Python, Contents::SandboxScript { .. }) => (
            "this script uses the SDK's Sandbox but has no @mvm.app declaration, and mvmctl never runs a .py file".to_string(),
            format!("record it yourself and compile the recording: `MVM_SDK_MODE=record MVM_SDK_OUT_PATH=rec.json python3 {file}`, then `mvmctl compile --from-recording rec.json`"),
        ),
        (Lang::Python, Contents::Nothing { app_at: Some(_) }) => (
            "the SDK's app is used here, but not as the decorator of a module-level function".into(),
            "write `@mvm.app(...)` directly above a module-level `def`".into(),
        ),
        (Lang::Python, _) => (
            "no @mvm.app(...) function in this file".into(),
            "decorate one module-level function with @mvm.app(...) (after `import mvm`, or `from mvm import app`)".into(),
        ),
        (Lang::TypeScript, Contents::Nothing { app_at: Some(_) }) => (
            "the SDK's app is used here, but not as a module-level declaration, so this file is neither compiled statically nor run".into(),
            "write the declaration at module level: `export const f = mvm.app({...})(fn)`".into(),
        ),
        (Lang::TypeScript, _) => (
            "no mvm.app({...}) declaration and no use of the SDK's Sandbox in this file".into(),
            "declare the workload with `export const f = mvm.app({...})(fn)` after `import * as mvm from \"mvm-sdk\"`".into(),
        ),
    };
    let at = match contents {
        Contents::SandboxScript { at } | Contents::Nothing { app_at: Some(at) } => *at,
        _ => 0,
    };
    diag::Diag::new(Code::ENoDeclaration, at, message, hint)
}

/// The location of `pointer` or of its nearest recorded ancestor.
fn nearest(spans: &BTreeMap<String, Location>, pointer: &str) -> Option<Location> {
    let mut p = pointer;
    loop {
        if let Some(loc) = spans.get(p) {
            return Some(loc.clone());
        }
        p = &p[..p.rfind('/')?];
    }
}
