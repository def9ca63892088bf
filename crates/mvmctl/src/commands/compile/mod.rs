//! `mvmctl compile`: declaration or Workload IR → compile output. The
//! arguments become an [`Input`] and [`LoadOptions`]; which front end reads
//! the input, and whether a script may run, is `mvm_recording::input`'s
//! business; this module only calls it and prints the result.

mod options;
mod report;

use std::path::PathBuf;
use std::time::Duration;

use clap::ArgGroup;
use mvm_recording::input::{self, Input, LoadOptions};

use super::EXIT_REJECTED;
use super::findings::Format;

/// Compile a declaration or Workload IR into a build directory, or a
/// deterministic archive when OUT ends in .tgz or .tar.gz.
#[derive(Debug, clap::Args)]
#[command(group(ArgGroup::new("source").required(true).args(["input", "from_ir", "from_recording"])))]
pub struct CompileArgs {
    /// A declaration (.py, .ts, .mts), Workload IR (.json), or - for IR on stdin.
    pub input: Option<PathBuf>,

    /// Read Workload IR from FILE whatever its extension (- for stdin).
    #[arg(long, value_name = "FILE")]
    pub from_ir: Option<PathBuf>,

    /// Lower a runtime SDK recording (docs/recording.md) to a workload.
    #[arg(long, value_name = "FILE")]
    pub from_recording: Option<PathBuf>,

    /// Which sandbox of a recording to compile (0-based), when it has several.
    #[arg(long, value_name = "N")]
    pub sandbox: Option<usize>,

    /// Workload id and app name for a recording (default: from the script).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Where to write: a directory, or an archive ending in .tgz/.tar.gz.
    #[arg(
        long,
        short = 'o',
        value_name = "OUT",
        required_unless_present = "check"
    )]
    pub out: Option<PathBuf>,

    /// Resolve the app's source.path against DIR instead of the input
    /// file's directory (or, for IR on stdin, the current directory).
    #[arg(long, value_name = "DIR")]
    pub source_root: Option<PathBuf>,

    /// Validate and run the bundle checks; write nothing (and never run
    /// anything, not even with --allow-host-run).
    #[arg(long, conflicts_with = "out")]
    pub check: bool,

    /// Allow compiling a TypeScript Sandbox script (no mvm.app declaration)
    /// by running it ON THIS HOST in record mode. Also MVM_ALLOW_HOST_RUN=1.
    #[arg(long)]
    pub allow_host_run: bool,

    /// Kill a script run by --allow-host-run (and all it started) after SECS.
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub host_run_timeout: u64,

    /// Report as text (findings on stderr) or one JSON object on stdout.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

pub fn run(args: CompileArgs) -> anyhow::Result<i32> {
    let opts = LoadOptions {
        source_root: args.source_root.clone(),
        recording: mvm_recording::LowerOptions {
            sandbox: args.sandbox,
            name: args.name.clone(),
        },
        host_run: options::host_run(
            args.allow_host_run,
            args.check,
            Duration::from_secs(args.host_run_timeout),
        ),
    };
    let loaded = match (&args.input, &args.from_ir, &args.from_recording) {
        (_, _, Some(path)) => Ok(Input::Recording(path.clone())),
        (_, Some(path), None) => Ok(input::from_ir(path)),
        (Some(path), None, None) => input::classify(path),
        (None, None, None) => unreachable!("clap requires one input"),
    }
    .and_then(|i| {
        // Notices come while loading (a warning before a script runs), so
        // they are printed as they arrive.
        input::load(&i, &opts, &mut std::io::stdin(), &mut |n| eprintln!("{n}"))
    });
    let req = match loaded {
        Ok(ok) => ok,
        Err(e) => {
            report::input_error(&e, args.format)?;
            return Ok(EXIT_REJECTED);
        }
    };
    tracing::debug!(origin = %req.origin, source_root = %req.source_root.display(), "input loaded");
    if args.check {
        let result = mvm_compile::check(&req);
        report::checked(&req, &result, args.format)?;
        return Ok(if result.has_errors() {
            EXIT_REJECTED
        } else {
            0
        });
    }
    let out = args
        .out
        .as_deref()
        .expect("clap requires --out without --check");
    let compile_opts = match options::compile_options() {
        Ok(o) => o,
        Err(e) => {
            report::options_error(&e, args.format)?;
            return Ok(EXIT_REJECTED);
        }
    };
    match mvm_compile::compile(&req, out, &compile_opts) {
        Ok(output) => {
            report::compiled(&req, &output, args.format)?;
            Ok(0)
        }
        Err(e) => {
            report::failed(&e, out, args.format)?;
            Ok(EXIT_REJECTED)
        }
    }
}
