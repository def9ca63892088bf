//! `mvmctl ps`: list instances.

/// List instances: status (a VM whose QEMU died shows as dead), image,
/// uptime, vCPUs, memory, and QEMU's resident memory and CPU time.
#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: PsArgs) -> anyhow::Result<i32> {
    let rows = mvm_runtime::ps::ps(&mvm_runtime::home::mvm_home())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", mvm_runtime::ps::render_table(&rows));
    }
    Ok(0)
}
