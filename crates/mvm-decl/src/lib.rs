//! Static declaration front ends: read a Python (`@mvm.app(...)`) or
//! TypeScript (`mvm.app({...})(fn)`) declaration file and produce Workload IR
//! **without importing, evaluating or running any of it**.
//!
//! Layout: [`python`] and [`typescript`] only walk their syntax trees and
//! build a language-neutral [`value`] tree; [`lower`] turns that into IR for
//! both (so equivalent files give byte-identical canonical IR); [`helpers`]
//! holds the helper allowlist; [`span`] turns byte offsets into
//! file:line:col.
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
pub mod lower;
pub mod python;
pub mod span;
pub mod typescript;
pub mod value;

use std::collections::BTreeMap;
use std::path::Path;

use mvm_ir::{Code, Finding, Location, Workload};

use crate::span::LineIndex;

/// The language of a declaration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Python,
    TypeScript,
}

/// `.py` → Python; `.ts`, `.mts`, `.cts` → TypeScript; anything else `None`.
pub fn lang_for_path(path: &Path) -> Option<Lang> {
    match path.extension()?.to_str()? {
        "py" => Some(Lang::Python),
        "ts" | "mts" | "cts" => Some(Lang::TypeScript),
        _ => None,
    }
}

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
    /// A TypeScript file without `mvm.app(...)`: the CLI may fall back to the
    /// recorded (auto-run) path. A Python file without one is an error.
    NoDeclaration,
}

/// Compiles the declaration in `source` (read from `path`, which is used for
/// the language and in locations). `source_root_rel_path` is the file's path
/// relative to the source root; it names the default entrypoint module
/// (`src/tool.py` → `src.tool`).
///
/// `Err` holds every finding (errors and any warnings), each located; print
/// them with `Display` (`FILE:LINE:COL: error[CODE]: message` + `  hint: ...`).
pub fn compile_declaration(
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
        Some(decl) => decl,
        None if lang == Lang::TypeScript => return Ok(Outcome::NoDeclaration),
        None => {
            return Err(vec![
                Finding::new(
                    Code::ENoDeclaration,
                    "",
                    "no @mvm.app(...) function in this file",
                    "decorate one module-level function with @mvm.app(...) (after `import mvm`)",
                )
                .at(index.locate(0)),
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
