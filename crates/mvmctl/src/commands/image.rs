//! `mvmctl image list|rm|inspect`: the image store, and what uses each
//! image (mvm-runtime's `store`).

use std::time::Duration;

use mvm_runtime::store::{self, ImageRow, Report};

#[derive(Debug, clap::Subcommand)]
pub enum ImageCommand {
    /// List images: names, id, size, age, and what uses each.
    #[command(alias = "ls")]
    List {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove an image (by name or id); refused while an instance or
    /// snapshot uses it, unless --force, which removes those too.
    Rm {
        /// An image name or id (a unique id prefix of 8+ digits will do).
        target: String,
        /// Also stop and remove the instances, and remove the tagged
        /// snapshots, that use it (each is listed).
        #[arg(long)]
        force: bool,
        /// Print what was removed as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show an image: names, size, users, and its image.lock (packages,
    /// dependencies, kernel, grants, digests).
    Inspect {
        target: String,
        /// Print the whole record as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: ImageCommand) -> anyhow::Result<i32> {
    let home = mvm_runtime::home::mvm_home();
    match cmd {
        ImageCommand::List { json } => {
            let rows = store::images(&home)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", render(&rows, now_unix()));
            }
        }
        ImageCommand::Rm {
            target,
            force,
            json,
        } => {
            let report =
                store::remove_image(&home, &target, force, mvm_runtime::down::DEFAULT_GRACE)?;
            return print_report(&report, json);
        }
        ImageCommand::Inspect { target, json } => {
            let image = store::inspect(&home, &target)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&image)?);
            } else {
                print!("{}", describe(&image));
            }
        }
    }
    Ok(0)
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes.div_ceil(1 << 20))
}

fn age(now: u64, then: u64) -> String {
    let s = Duration::from_secs(now.saturating_sub(then)).as_secs();
    match s {
        0..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86400),
    }
}

fn render(rows: &[ImageRow], now: u64) -> String {
    let mut out = format!(
        "{:<24} {:<14} {:>9} {:>9}  {}\n",
        "NAME", "ID", "SIZE", "CREATED", "USED BY"
    );
    for r in rows {
        let names = if r.names.is_empty() {
            format!("<none> ({})", r.workload)
        } else {
            r.names.join(",")
        };
        let used = if r.used_by.is_empty() {
            "-".to_string()
        } else {
            r.used_by.join(", ")
        };
        out.push_str(&format!(
            "{:<24} {:<14} {:>9} {:>9}  {}\n",
            names,
            &r.id[..12],
            mib(r.size_bytes),
            age(now, r.created_unix),
            used
        ));
    }
    out
}

fn describe(i: &store::Inspected) -> String {
    let l = &i.lock;
    let s = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_string();
    let mut out = String::new();
    out.push_str(&format!("image      {}\n", i.row.id));
    out.push_str(&format!(
        "names      {}\n",
        if i.row.names.is_empty() {
            "<none>".into()
        } else {
            i.row.names.join(", ")
        }
    ));
    out.push_str(&format!("workload   {}\n", i.row.workload));
    out.push_str(&format!("dir        {}\n", i.dir.display()));
    out.push_str(&format!(
        "size       {} ({} template snapshot(s))\n",
        mib(i.row.size_bytes),
        i.row.templates
    ));
    out.push_str(&format!(
        "used by    {}\n",
        if i.row.used_by.is_empty() {
            "-".into()
        } else {
            i.row.used_by.join(", ")
        }
    ));
    out.push_str(&format!("builder    {}\n", s(&l["builder"])));
    out.push_str(&format!(
        "suite      {} from {}\n",
        s(&l["suite"]),
        s(&l["mirror"])
    ));
    out.push_str(&format!("kernel     {}\n", s(&l["kernel"])));
    out.push_str(&format!("ir hash    {}\n", s(&l["inputs"]["ir_hash"])));
    out.push_str(&format!("sha256sums {}\n", s(&l["inputs"]["sha256sums"])));
    let count = |v: &serde_json::Value| v.as_array().map(Vec::len).unwrap_or(0);
    out.push_str(&format!(
        "packages   {} Debian, {} wheel(s)\n",
        count(&l["debian"]),
        count(&l["wheels"])
    ));
    match l.get("dependencies").filter(|d| !d.is_null()) {
        Some(d) => {
            out.push_str(&format!(
                "deps       {} from {} (sha256 {}), {} package(s)\n",
                s(&d["tool"]),
                s(&d["lockfile"]),
                s(&d["lockfile_sha256"]),
                count(&d["packages"])
            ));
            let grants: Vec<String> = d["egress"]
                .as_array()
                .into_iter()
                .flatten()
                .map(s)
                .collect();
            out.push_str(&format!(
                "grants     {}\n",
                if grants.is_empty() {
                    "-".into()
                } else {
                    grants.join(", ")
                }
            ));
        }
        None => out.push_str("deps       none declared\n"),
    }
    out
}

/// What a removal did, one line per item, then the total; or JSON. The
/// exit status is 1 when something could not be removed (the rest was).
pub fn print_report(report: &Report, json: bool) -> anyhow::Result<i32> {
    let status = if report.errors.is_empty() { 0 } else { 1 };
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(status);
    }
    for e in &report.errors {
        eprintln!("error: {}", mvm_ir::text::for_terminal(e));
    }
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for r in &report.removed {
        if r.bytes > 0 {
            println!("{verb} {} {} ({})", r.kind, r.what, mib(r.bytes));
        } else {
            println!("{verb} {} {}", r.kind, r.what);
        }
    }
    for k in &report.kept {
        println!("kept {} ({})", k.what, k.why);
    }
    let total = if report.dry_run {
        "would free"
    } else {
        "freed"
    };
    println!("{total} {}", mib(report.freed_bytes));
    Ok(status)
}
