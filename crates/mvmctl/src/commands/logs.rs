//! `mvmctl logs`: an instance's console log.

use mvm_runtime::InstanceName;

/// Print an instance's console log: kernel, guest agent, hooks and the
/// command entrypoint's output.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The instance whose log to print.
    pub name: String,
    /// Keep printing new output until the instance is removed.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// The egress log instead: one JSON line per guest connection (or DNS
    /// query) through the gate, allowed or refused, with the destination
    /// asked, the address connected, bytes each way and duration.
    #[arg(long)]
    pub egress: bool,
}

pub fn run(args: LogsArgs) -> anyhow::Result<i32> {
    let name = InstanceName::parse(&args.name)?;
    let which = if args.egress {
        mvm_runtime::logs::Which::Egress
    } else {
        mvm_runtime::logs::Which::Console
    };
    mvm_runtime::logs::logs(
        &mvm_runtime::home::mvm_home(),
        &name,
        which,
        args.follow,
        &mut std::io::stdout(),
    )?;
    Ok(0)
}
