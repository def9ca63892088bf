//! `mvmctl ir`: the Workload IR's JSON Schema, and canonical formatting.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::EXIT_REJECTED;
use super::findings;

#[derive(Debug, Subcommand)]
pub enum IrCommand {
    /// Print the JSON Schema (draft 2020-12) of Workload IR v0.1.
    Schema,
    /// Print a Workload IR file in canonical form (RFC 8785, every default
    /// written out); with --write, replace the file with it.
    Fmt {
        /// The IR file, or - for stdin.
        file: PathBuf,
        /// Rewrite FILE in place instead of printing.
        #[arg(long, conflicts_with = "check")]
        write: bool,
        /// Exit with status 1 when FILE is not already canonical; print nothing.
        #[arg(long)]
        check: bool,
    },
}

pub fn run(cmd: IrCommand) -> anyhow::Result<i32> {
    match cmd {
        IrCommand::Schema => {
            std::io::stdout()
                .lock()
                .write_all(mvm_ir::schema::json_schema_text().as_bytes())?;
            Ok(0)
        }
        IrCommand::Fmt { file, write, check } => fmt(&file, write, check),
    }
}

fn fmt(file: &Path, write: bool, check: bool) -> anyhow::Result<i32> {
    let stdin = file == Path::new("-");
    if stdin && write {
        eprintln!(
            "error: --write needs a file, not stdin\n  hint: redirect stdout instead: mvmctl ir fmt - > FILE"
        );
        return Ok(EXIT_REJECTED);
    }
    let text = if stdin {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map(|_| s)
    } else {
        std::fs::read_to_string(file)
    };
    let text = match text {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", file.display());
            return Ok(EXIT_REJECTED);
        }
    };
    let workload = match mvm_ir::decode::from_str(&text) {
        Ok(w) => w,
        Err(found) => {
            findings::print_text(&found);
            return Ok(rejected(file, &found));
        }
    };
    let found = mvm_ir::validate::validate(&workload);
    findings::print_text(&found);
    if found.iter().any(mvm_ir::Finding::is_error) {
        return Ok(rejected(file, &found));
    }
    let canonical = mvm_ir::to_canonical_string(&workload);
    if check {
        return Ok(if canonical == text { 0 } else { 1 });
    }
    if write {
        if canonical != text {
            replace_file(file, canonical.as_bytes())?;
        }
        return Ok(0);
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(canonical.as_bytes())?;
    // The canonical form has no trailing newline; a terminal gets one so the prompt starts on its own line.
    if stdout.is_terminal() {
        writeln!(stdout)?;
    }
    Ok(0)
}

fn rejected(file: &Path, found: &[mvm_ir::Finding]) -> i32 {
    let name = if file == Path::new("-") {
        "stdin".into()
    } else {
        file.display().to_string()
    };
    eprintln!(
        "error: {name} is not valid Workload IR: {}",
        findings::tally(found)
    );
    EXIT_REJECTED
}

/// Write next to the file and rename over it, so a crash never leaves half a file.
fn replace_file(file: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    if let Ok(meta) = std::fs::metadata(file) {
        tmp.as_file().set_permissions(meta.permissions())?;
    }
    tmp.persist(file)?;
    Ok(())
}
