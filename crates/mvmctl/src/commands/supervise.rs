//! `mvmctl __supervise NAME` (hidden): the per-instance supervisor that
//! `mvmctl up` starts in the background. It owns QEMU and the single agent
//! connection and serves CLI clients on the instance's control socket.

/// Run the supervisor of one instance (started by `mvmctl up`; not for people).
#[derive(Debug, clap::Args)]
pub struct SuperviseArgs {
    pub name: String,
}

pub fn run(args: SuperviseArgs) -> anyhow::Result<i32> {
    let name = mvm_runtime::name::InstanceName::parse(&args.name)?;
    Ok(mvm_runtime::supervisor::run(
        &mvm_runtime::home::mvm_home(),
        &name,
    ))
}
