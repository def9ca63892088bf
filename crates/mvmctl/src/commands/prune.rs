//! `mvmctl prune` and `mvmctl cache clean`: remove what nothing uses
//! (mvm-runtime's `store` decides what that is).

use super::image::print_report;

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Say what would be removed, and remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: PruneArgs) -> anyhow::Result<i32> {
    let home = mvm_runtime::home::mvm_home();
    let report = mvm_runtime::store::prune(&home, args.dry_run)?;
    print_report(&report, args.json)
}

#[derive(Debug, clap::Subcommand)]
pub enum CacheCommand {
    /// Empty the download cache (kernels, base roots, wheels, the agent
    /// initramfs; fetched or built again when next needed), keeping what
    /// an instance or tagged snapshot boots from.
    Clean(PruneArgs),
    /// Print where the cache is and its size.
    Dir,
}

pub fn cache(cmd: CacheCommand) -> anyhow::Result<i32> {
    let cache_dir = mvm_runtime::assets::cache_dir()?;
    match cmd {
        CacheCommand::Clean(args) => {
            let home = mvm_runtime::home::mvm_home();
            let report = mvm_runtime::store::cache_clean(&home, &cache_dir, args.dry_run)?;
            return print_report(&report, args.json);
        }
        CacheCommand::Dir => {
            println!("{}", cache_dir.display());
            eprintln!("{}", super::image::mib(mvm_image::disk_usage(&cache_dir)));
        }
    }
    Ok(0)
}
