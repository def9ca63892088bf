//! `mvmctl up`: start an instance of an image and wait until it is ready.

use std::time::Duration;

use mvm_runtime::InstanceName;
use mvm_runtime::assets::{self, Progress};
use mvm_runtime::up::{self, SupervisorCommand, UpOptions, UpOutcome};

/// Boot a microVM from an image, run before_start, wait for the after_start
/// probe to pass, and return; the instance keeps running in the background.
///
/// TARGET is an image id, a built workload's name, or a compiled directory
/// (its newest image is used). On failure nothing is left running.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Image id, workload name, or compiled directory.
    pub target: String,
    /// Instance name (default: the workload's app name).
    #[arg(long)]
    pub name: Option<String>,
    /// Seconds from QEMU start until the instance must be ready.
    #[arg(long, value_name = "SECS", default_value_t = up::DEFAULT_READY_TIMEOUT.as_secs())]
    pub timeout_ready: u64,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: UpArgs) -> anyhow::Result<i32> {
    let home = mvm_runtime::home::mvm_home();
    let name = args.name.as_deref().map(InstanceName::parse).transpose()?;
    let image = mvm_runtime::image::resolve(&home, &args.target)?;
    let progress = if args.json {
        Progress::Hidden
    } else {
        Progress::Stderr
    };
    let boot = assets::boot_assets(&assets::cache_dir()?, progress)?;
    let opts = UpOptions {
        name,
        ready_timeout: Duration::from_secs(args.timeout_ready),
        supervisor: SupervisorCommand::current_exe()?,
    };
    let outcome = up::up_image(&home, image, &boot, &opts)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    } else {
        print_ready(&outcome);
    }
    Ok(0)
}

fn print_ready(o: &UpOutcome) {
    let t = &o.timings;
    let secs = |ms: u64| format!("{:.1}s", ms as f64 / 1000.0);
    eprintln!(
        "{}: ready in {} (boot {}, configure {} ms, before_start {} ms, after_start {} ms)",
        o.name,
        secs(t.total_ms),
        secs(t.boot_ms),
        t.configure_ms,
        t.before_start_ms,
        t.after_start_ms
    );
    println!("{}", o.name);
}
