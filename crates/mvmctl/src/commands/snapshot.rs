//! `mvmctl snapshot`: take tagged snapshots of running instances, list
//! and remove them. `mvmctl up --from-snapshot TAG` starts forks.

use mvm_runtime::InstanceName;

/// Snapshot a running instance (`mvmctl snapshot NAME TAG`; it keeps
/// running, stopped only while it is saved), or list and remove
/// snapshots. `mvmctl up --from-snapshot TAG` starts instances from one.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    pub command: Option<SnapshotCommand>,
    /// The running instance to snapshot.
    #[arg(required = true)]
    pub name: Option<String>,
    /// The snapshot's tag (lowercase letters, digits and '-').
    #[arg(required = true)]
    pub tag: Option<String>,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum SnapshotCommand {
    /// Snapshot a running instance (the same as `mvmctl snapshot NAME TAG`).
    Create {
        name: String,
        tag: String,
        #[arg(long)]
        json: bool,
    },
    /// List tagged snapshots with their source, image and size on disk.
    #[command(alias = "ls")]
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a tagged snapshot.
    Rm { tag: String },
}

pub fn run(args: SnapshotArgs) -> anyhow::Result<i32> {
    let home = mvm_runtime::home::mvm_home();
    match args.command {
        Some(SnapshotCommand::Create { name, tag, json }) => create(&home, &name, &tag, json),
        Some(SnapshotCommand::List { json }) => {
            let rows = mvm_runtime::snapshot::list(&home)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", render(&rows));
            }
            Ok(0)
        }
        Some(SnapshotCommand::Rm { tag }) => {
            mvm_runtime::snapshot::remove(&home, &tag)?;
            eprintln!("{tag}: removed");
            Ok(0)
        }
        None => {
            let (Some(name), Some(tag)) = (args.name, args.tag) else {
                unreachable!("clap requires NAME and TAG without a subcommand")
            };
            create(&home, &name, &tag, args.json)
        }
    }
}

fn create(home: &std::path::Path, name: &str, tag: &str, json: bool) -> anyhow::Result<i32> {
    let name = InstanceName::parse(name)?;
    let o = mvm_runtime::lifecycle::snapshot(home, &name, tag)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&o)?);
    } else {
        eprintln!(
            "{}: snapshot `{}` taken in {:.1}s ({} MiB; guest stopped {} ms)",
            o.name,
            o.tag,
            o.total_ms as f64 / 1000.0,
            o.bytes >> 20,
            o.stopped_ms
        );
        println!("{}", o.tag);
    }
    Ok(0)
}

fn render(rows: &[mvm_runtime::snapshot::SnapshotRow]) -> String {
    let mut out = format!(
        "{:<24} {:<20} {:<20} {:>9} {:>8}  {}\n",
        "TAG", "SOURCE", "IMAGE", "MEMORY", "SIZE", "STATUS"
    );
    let dash = || "-".to_string();
    for r in rows {
        out.push_str(&format!(
            "{:<24} {:<20} {:<20} {:>9} {:>8}  {}\n",
            r.tag,
            r.source.clone().unwrap_or_else(dash),
            r.image.clone().unwrap_or_else(dash),
            r.memory_mb.map(|m| format!("{m} MiB")).unwrap_or_else(dash),
            format!("{} MiB", r.size_bytes.div_ceil(1 << 20)),
            r.problem.as_deref().unwrap_or("ok"),
        ));
    }
    out
}
