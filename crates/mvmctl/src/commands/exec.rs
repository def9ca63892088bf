//! `mvmctl exec`: run a command inside a running instance.

use std::time::Duration;

use mvm_runtime::InstanceName;
use mvm_runtime::call;

/// Run a command in a running instance, streaming its output.
///
/// Exits with the command's exit status (128 + N when killed by signal N,
/// 124 when --timeout ran out; the whole process tree is killed then).
#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// The instance to run the command in.
    pub name: String,
    /// Kill the command (and everything it started) after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

pub fn run(args: ExecArgs) -> anyhow::Result<i32> {
    let name = InstanceName::parse(&args.name)?;
    let timeout = match args.timeout {
        Some(secs) if secs.is_finite() && secs > 0.0 => Some(Duration::from_secs_f64(secs)),
        Some(secs) => anyhow::bail!("--timeout must be a positive number of seconds, got {secs}"),
        None => None,
    };
    let home = mvm_runtime::home::mvm_home();
    let status = call::exec(
        &home,
        &name,
        args.command,
        timeout,
        &mut std::io::stdout(),
        &mut std::io::stderr(),
    )?;
    if status.timed_out {
        eprintln!("mvmctl exec: the command timed out and was killed");
    }
    Ok(status.exit_code())
}
