//! `mvmctl doctor`: can the main job (compile → build → up → invoke) run on
//! this host, and if not, what to install or change.

use std::path::Path;
use std::process::Command;

use serde::Serialize;

/// Report the host, the tools mvm uses and the store; exit 1 when the main
/// job cannot run here.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Check {
    name: String,
    ok: bool,
    /// Whether the main job needs this check to pass.
    required: bool,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
}

#[derive(Debug, Serialize)]
struct Section {
    title: &'static str,
    checks: Vec<Check>,
}

#[derive(Debug, Serialize)]
struct Report {
    ok: bool,
    sections: Vec<Section>,
}

pub fn run(args: DoctorArgs) -> anyhow::Result<i32> {
    let sections = vec![host(), tools(), store()];
    let ok = sections
        .iter()
        .flat_map(|s| &s.checks)
        .all(|c| c.ok || !c.required);
    let report = Report { ok, sections };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report));
    }
    Ok(if ok { 0 } else { 1 })
}

fn render(report: &Report) -> String {
    let mut out = String::new();
    for section in &report.sections {
        out.push_str(&format!("{}\n", section.title));
        for c in &section.checks {
            let mark = match (c.ok, c.required) {
                (true, _) => "ok  ",
                (false, true) => "FAIL",
                (false, false) => "warn",
            };
            out.push_str(&format!("  [{mark}] {:<14} {}\n", c.name, c.detail));
            if let Some(hint) = c.hint.as_ref().filter(|_| !c.ok) {
                out.push_str(&format!("         hint: {hint}\n"));
            }
        }
    }
    out.push_str(if report.ok {
        "The main job (compile → build → up → invoke) can run here.\n"
    } else {
        "The main job cannot run here until the FAIL lines are fixed.\n"
    });
    out
}

fn check(name: &str, ok: bool, required: bool, detail: String, hint: Option<&str>) -> Check {
    Check {
        name: name.into(),
        ok,
        required,
        detail,
        hint: hint.map(str::to_owned),
    }
}

fn host() -> Section {
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_owned())
            })
        })
        .unwrap_or_else(|| std::env::consts::OS.to_owned());
    let arch = std::env::consts::ARCH;
    let accel = mvm_vmm::probe();
    let qemu = mvm_vmm::Qemu::new(mvm_vmm::DEFAULT_QEMU).version();
    Section {
        title: "Host",
        checks: vec![
            check("os", true, false, os, None),
            check(
                "arch",
                arch == "x86_64",
                true,
                arch.to_owned(),
                Some(
                    "mvm boots x86-64 guests with Debian's amd64 kernel; other host architectures are not supported yet",
                ),
            ),
            check(
                "accelerator",
                true,
                false,
                format!("{}: {}", accel.chosen, accel.reason),
                None,
            ),
            match qemu {
                Ok(v) => check("qemu", true, true, v.banner, None),
                Err(e) => check(
                    "qemu",
                    false,
                    true,
                    e.to_string(),
                    Some("apt-get install qemu-system-x86"),
                ),
            },
        ],
    }
}

fn tools() -> Section {
    let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let ts = match mvm_recording::runner::resolve(&cwd) {
        Ok(r) => check(
            "ts runner",
            true,
            false,
            format!("{} ({}: {})", r.kind, r.source.describe(), r.path.display()),
            None,
        ),
        Err(e) => check(
            "ts runner",
            false,
            false,
            e.to_string(),
            Some(mvm_recording::runner::INSTALL_HINT),
        ),
    };
    let mut checks = vec![ts];
    for (name, args, required, hint) in [
        (
            "python3",
            &["--version"][..],
            false,
            "apt-get install python3 (for the Python SDK's in-process route)",
        ),
        (
            "node",
            &["--version"][..],
            false,
            "install Node.js (for the TypeScript SDK's in-process route)",
        ),
        (
            "mmdebstrap",
            &["--version"][..],
            true,
            "apt-get install mmdebstrap (builds image root filesystems)",
        ),
        (
            "mkfs.ext4",
            &["-V"][..],
            true,
            "apt-get install e2fsprogs (seals images)",
        ),
        (
            "apt-get",
            &["--version"][..],
            true,
            "the guest kernel and image packages come from Debian via apt",
        ),
    ] {
        checks.push(match tool_version(name, args) {
            Some(v) => check(name, true, required, v, None),
            None => check(
                name,
                false,
                required,
                "not found on PATH".into(),
                Some(hint),
            ),
        });
    }
    Section {
        title: "Tools",
        checks,
    }
}

fn tool_version(bin: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(bin).args(args).output().ok()?;
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    Some(
        String::from_utf8_lossy(&text)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_owned(),
    )
}

fn store() -> Section {
    let home = mvm_runtime::home::mvm_home();
    let mut checks = vec![dir_check("data", &home)];
    match mvm_guest::default_cache_dir() {
        Ok(cache) => checks.push(dir_check("cache", &cache)),
        Err(e) => checks.push(check(
            "cache",
            false,
            true,
            e.to_string(),
            Some("set MVM_CACHE_DIR"),
        )),
    }
    let cache = mvm_guest::default_cache_dir().ok();
    if let Ok(u) = mvm_runtime::store::usage(&home, cache.as_deref()) {
        let mib = |b: u64| format!("{} MiB", b.div_ceil(1 << 20));
        checks.push(check(
            "images",
            true,
            false,
            format!(
                "{} image(s), {} (`mvmctl prune` removes what nothing uses)",
                u.images,
                mib(u.images_bytes)
            ),
            None,
        ));
        checks.push(check(
            "instances",
            true,
            false,
            format!("{} instance(s), {}", u.instances, mib(u.instances_bytes)),
            None,
        ));
        checks.push(check(
            "snapshots",
            true,
            false,
            format!(
                "{} tagged snapshot(s), {}",
                u.snapshots,
                mib(u.snapshots_bytes)
            ),
            None,
        ));
        checks.push(check(
            "cache size",
            true,
            false,
            format!("{} (`mvmctl cache clean` empties it)", mib(u.cache_bytes)),
            None,
        ));
    }
    Section {
        title: "Store",
        checks,
    }
}

/// A directory mvm writes to: where it is and how much room its filesystem has.
fn dir_check(name: &str, dir: &Path) -> Check {
    // The directory may not exist yet; measure the nearest existing ancestor.
    let existing = dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    match mvm_image::free_bytes(existing) {
        Some(free) => {
            let gib = free as f64 / (1u64 << 30) as f64;
            check(
                name,
                gib >= 2.0,
                true,
                format!("{} ({gib:.1} GiB free)", dir.display()),
                Some(
                    "images and the kernel cache need a few GiB: free space or point MVM_HOME / MVM_CACHE_DIR elsewhere",
                ),
            )
        }
        None => check(
            name,
            false,
            true,
            format!("{}: cannot stat", dir.display()),
            None,
        ),
    }
}
