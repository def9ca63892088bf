//! What `mvmctl compile` prints. Text: findings on stderr, a summary on
//! stdout. JSON: one object on stdout,
//! `{"ok", "mode", "findings", ...}` plus what the mode produced.

use std::io::Write;
use std::path::Path;

use mvm_compile::{CheckResult, CompileError, CompileOutput, CompileRequest, Review};
use mvm_ir::Finding;
use mvm_recording::input::InputError;
use serde_json::{Value, json};

use super::options::OptionsError;
use crate::commands::findings::{self, Format};

/// The input could not be loaded: its findings, or the error and its hint.
pub fn input_error(e: &InputError, format: Format) -> anyhow::Result<()> {
    let error = match e {
        InputError::Rejected(_) => None,
        _ => Some((e.to_string(), e.hint())),
    };
    refused(e.findings(), error, format)
}

/// The environment gave an option compile cannot use.
pub fn options_error(e: &OptionsError, format: Format) -> anyhow::Result<()> {
    refused(&[], Some((e.to_string(), Some(e.hint()))), format)
}

/// Nothing was compiled: `error` is `None` when the findings say why.
fn refused(
    found: &[Finding],
    error: Option<(String, Option<&str>)>,
    format: Format,
) -> anyhow::Result<()> {
    match format {
        Format::Text => {
            findings::print_text(found);
            match &error {
                None => eprintln!("error: the input was rejected: {}", findings::tally(found)),
                Some((message, hint)) => {
                    eprintln!("error: {message}");
                    if let Some(hint) = hint {
                        eprintln!("  hint: {hint}");
                    }
                }
            }
            Ok(())
        }
        Format::Json => {
            let mut v =
                json!({ "ok": false, "mode": "input", "findings": findings::to_json(found) });
            if let Some((message, hint)) = error {
                v["error"] = Value::String(message);
                v["hint"] = json!(hint);
            }
            print_json(&v)
        }
    }
}

pub fn checked(req: &CompileRequest, result: &CheckResult, format: Format) -> anyhow::Result<()> {
    let ok = !result.has_errors();
    match format {
        Format::Text => {
            findings::print_text(&result.findings);
            let files = result
                .bundled
                .map(|n| format!(", {n} file(s) would be bundled"))
                .unwrap_or_default();
            let verdict = if ok { "check passed" } else { "check failed" };
            let line = format!(
                "{verdict}: {}{files}; {}",
                req.origin,
                findings::tally(&result.findings)
            );
            if ok {
                println!("{line}")
            } else {
                eprintln!("error: {line}")
            }
            if let Some(review) = &result.review {
                print!("{}", review.render_text());
            }
            Ok(())
        }
        Format::Json => print_json(&json!({
            "ok": ok,
            "mode": "check",
            "origin": req.origin,
            "files": result.bundled,
            "findings": findings::to_json(&result.findings),
            "review": review_json(result.review.as_ref()),
        })),
    }
}

pub fn compiled(req: &CompileRequest, o: &CompileOutput, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Text => {
            findings::print_text(&o.findings);
            let form = if o.archive { "archive" } else { "directory" };
            println!("compiled {} → {} ({form})", req.origin, o.out.display());
            println!("  ir_hash    {}", o.ir_hash);
            println!(
                "  source     {} file(s), tree_hash {}",
                o.bundled, o.tree_hash
            );
            print!("{}", o.review.render_text());
            Ok(())
        }
        Format::Json => print_json(&json!({
            "ok": true,
            "mode": "compile",
            "origin": req.origin,
            "out": o.out,
            "archive": o.archive,
            "ir_hash": o.ir_hash,
            "files": o.bundled,
            "tree_hash": o.tree_hash,
            "findings": findings::to_json(&o.findings),
            "review": review_json(Some(&o.review)),
        })),
    }
}

pub fn failed(e: &CompileError, out: &Path, format: Format) -> anyhow::Result<()> {
    let found = e.findings();
    match format {
        Format::Text => {
            findings::print_text(&found);
            eprintln!(
                "error: nothing was written to {}: {}",
                out.display(),
                findings::tally(&found)
            );
            Ok(())
        }
        Format::Json => print_json(&json!({
            "ok": false,
            "mode": "compile",
            "out": out,
            "findings": findings::to_json(&found),
        })),
    }
}

fn review_json(review: Option<&Review>) -> Value {
    // Reviews hold only strings, integers and lists, which always serialize.
    review
        .map(|r| serde_json::to_value(r).expect("a review serializes to JSON"))
        .unwrap_or(Value::Null)
}

fn print_json(v: &Value) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, v)?;
    writeln!(stdout)?;
    Ok(())
}
