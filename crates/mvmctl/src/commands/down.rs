//! `mvmctl down`: stop instances and remove their state.

use std::time::Duration;

use mvm_runtime::InstanceName;
use mvm_runtime::down::{self, DownOutcome};

/// Stop an instance: run before_stop (best-effort), power the guest off,
/// kill QEMU if it does not exit within the grace period, and remove the
/// instance's state, sockets, scratch disk and log. Dead instances are
/// cleaned up the same way.
#[derive(Debug, clap::Args)]
pub struct DownArgs {
    /// The instance to stop.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub name: Option<String>,
    /// Stop every instance.
    #[arg(long)]
    pub all: bool,
    /// Seconds the guest gets to power off before QEMU is killed.
    #[arg(long, value_name = "SECS", default_value_t = down::DEFAULT_GRACE.as_secs())]
    pub grace: u64,
    /// Print what was stopped as a JSON array ({name, was, before_stop}).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: DownArgs) -> anyhow::Result<i32> {
    let home = mvm_runtime::home::mvm_home();
    let grace = Duration::from_secs(args.grace);
    if let Some(name) = &args.name {
        let outcome = down::down(&home, &InstanceName::parse(name)?, grace)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&[outcome])?);
        } else {
            report(&outcome);
        }
        return Ok(0);
    }
    // With --all, one instance failing to clean up must not stop the rest.
    let mut status = 0;
    let mut stopped = Vec::new();
    for result in down::down_all(&home, grace)? {
        match result {
            Ok(outcome) if args.json => stopped.push(outcome),
            Ok(outcome) => report(&outcome),
            Err(e) => {
                eprintln!("error: {e}");
                status = 1;
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&stopped)?);
    }
    Ok(status)
}

fn report(o: &DownOutcome) {
    match &o.before_stop {
        Some(before_stop) => eprintln!("{}: stopped ({before_stop}), removed", o.name),
        None => eprintln!("{}: was {}, removed", o.name, o.was),
    }
}
