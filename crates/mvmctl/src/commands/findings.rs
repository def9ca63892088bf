//! Printing findings the same way for every command: one block per finding
//! on stderr (`PATH: error[CODE]: message` or `FILE:LINE:COL: ...`, then
//! `  hint: ...`), or as JSON objects for `--format json`.

use clap::ValueEnum;
use mvm_ir::Finding;

/// How a command reports its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// Findings on stderr, a short summary on stdout.
    #[default]
    Text,
    /// One JSON object on stdout holding the result and every finding.
    Json,
}

pub fn print_text(findings: &[Finding]) {
    for f in findings {
        if f.path.is_empty() && f.location.is_none() {
            // About no part of the IR (the output path, unparseable JSON): no place to show.
            eprintln!("{}[{}]: {}", f.severity.as_str(), f.code, f.message);
            if !f.hint.is_empty() {
                eprintln!("  hint: {}", f.hint);
            }
        } else {
            eprintln!("{f}");
        }
    }
}

/// `N error(s), M warning(s)`.
pub fn tally(findings: &[Finding]) -> String {
    let errors = findings.iter().filter(|f| f.is_error()).count();
    format!("{errors} error(s), {} warning(s)", findings.len() - errors)
}

pub fn to_json(findings: &[Finding]) -> serde_json::Value {
    // Findings hold only strings and integers, which always serialize.
    serde_json::to_value(findings).expect("findings serialize to JSON")
}
