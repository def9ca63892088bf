//! `mvmctl pause` and `mvmctl resume`: save a running instance to disk and
//! stop everything of it, then bring it back as it was.

use std::time::Duration;

use mvm_runtime::InstanceName;
use mvm_runtime::up::{self, SupervisorCommand};

/// Save a running instance's memory and disk state and stop its QEMU and
/// supervisor: it uses no CPU and no guest memory until `mvmctl resume`.
/// Open network connections do not survive; processes, files and the
/// agent's state do. `mvmctl down` of a paused instance removes it.
#[derive(Debug, clap::Args)]
pub struct PauseArgs {
    pub name: String,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Bring a paused instance back where it was, its clock and entropy
/// fixed up; hooks do not run again.
#[derive(Debug, clap::Args)]
pub struct ResumeArgs {
    pub name: String,
    /// Seconds until the restored instance must answer.
    #[arg(long, value_name = "SECS", default_value_t = up::DEFAULT_READY_TIMEOUT.as_secs())]
    pub timeout_ready: u64,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn pause(args: PauseArgs) -> anyhow::Result<i32> {
    let home = mvm_runtime::home::mvm_home();
    let name = InstanceName::parse(&args.name)?;
    let o = mvm_runtime::lifecycle::pause(&home, &name)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&o)?);
    } else {
        eprintln!(
            "{}: paused in {:.1}s ({} MiB saved; guest stopped {} ms)",
            o.name,
            o.total_ms as f64 / 1000.0,
            o.bytes >> 20,
            o.stopped_ms
        );
        println!("{}", o.name);
    }
    Ok(0)
}

pub fn resume(args: ResumeArgs) -> anyhow::Result<i32> {
    let home = mvm_runtime::home::mvm_home();
    let name = InstanceName::parse(&args.name)?;
    let outcome = mvm_runtime::lifecycle::resume(
        &home,
        &name,
        &SupervisorCommand::current_exe()?,
        Duration::from_secs(args.timeout_ready),
    )?;
    super::up::print_outcome(&outcome, args.json)?;
    Ok(0)
}
