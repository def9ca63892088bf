//! `mvmctl up`: start an instance of an image and wait until it is ready.

use std::time::Duration;

use mvm_runtime::InstanceName;
use mvm_runtime::admission::AdmissionRequest;
use mvm_runtime::assets::{self, Progress};
use mvm_runtime::up::{self, SupervisorCommand, UpOptions, UpOutcome};

/// Boot a microVM from an image, run before_start, wait for the after_start
/// probe to pass, and return; the instance keeps running in the background.
///
/// TARGET is an image id, a built workload's name, or a compiled directory
/// (its newest image is used); with --plan it may be left out (the plan
/// names its image). Admission checks the operator's policy first
/// ($MVM_HOME/policy.toml). On failure nothing is left running.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// Image id, workload name, or compiled directory.
    #[arg(required_unless_present_any = ["plan", "from_snapshot"], conflicts_with = "from_snapshot")]
    pub target: Option<String>,
    /// Always boot the kernel: do not restore the image's template
    /// snapshot, and do not save one.
    #[arg(long, conflicts_with = "from_snapshot")]
    pub cold: bool,
    /// Start a new instance from a tagged snapshot (`mvmctl snapshot NAME
    /// TAG`) instead of an image: a fork, with its own copy of the disk.
    #[arg(long, value_name = "TAG")]
    pub from_snapshot: Option<String>,
    /// A plan (`mvmctl plan`, signed with `mvmctl sign`) this launch must match.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<std::path::PathBuf>,
    /// Policy file instead of $MVM_HOME/policy.toml.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<std::path::PathBuf>,
    /// Instance name (default: the workload's app name).
    #[arg(long)]
    pub name: Option<String>,
    /// Seconds from QEMU start until the instance must be ready.
    #[arg(long, value_name = "SECS", default_value_t = up::DEFAULT_READY_TIMEOUT.as_secs())]
    pub timeout_ready: u64,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
    /// Let the egress gate connect to this exact grant (HOST:PORT, as the
    /// declaration grants it) although it is, or resolves to, a loopback,
    /// private, link-local or metadata address; repeatable.
    #[arg(long, value_name = "HOST:PORT")]
    pub allow_private_egress: Vec<String>,
    /// Connect a granted name to this address instead of resolving it
    /// (HOST=IP; a private IP also needs --allow-private-egress); repeatable.
    #[arg(long, value_name = "HOST=IP")]
    pub egress_pin: Vec<String>,
    /// Host address published ports listen on (default: 127.0.0.1 only).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1")]
    pub publish_address: std::net::Ipv4Addr,
    /// Connections the guest may hold open through the egress gate at once.
    #[arg(long, value_name = "N", default_value_t = mvm_runtime::network::DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=4096))]
    pub egress_max_connections: usize,
    /// New egress connections per second the guest may open.
    #[arg(long, value_name = "N", default_value_t = mvm_runtime::network::DEFAULT_MAX_RATE,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub egress_max_rate: u32,
    /// Seconds an egress connection may stay idle before the gate closes it.
    #[arg(long, value_name = "SECS", default_value_t = mvm_runtime::network::DEFAULT_IDLE_SECS,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub egress_idle_timeout: u64,
    /// PEM certificates the host trusts, besides the system's, for the
    /// requests it makes for the guest (`mvm.web_fetch`, `mvm.web_search`).
    #[arg(long, value_name = "FILE")]
    pub ca_bundle: Option<std::path::PathBuf>,
    /// Search provider for `mvm.web_search` (SearXNG's JSON API:
    /// GET URL?q=...&format=json), e.g. https://search.example/search.
    #[arg(long, value_name = "URL")]
    pub web_search: Option<String>,
    /// Stored secret sent to the search provider as a bearer token.
    #[arg(long, value_name = "SECRET", requires = "web_search")]
    pub web_search_key: Option<String>,
}

pub fn run(args: UpArgs) -> anyhow::Result<i32> {
    let home = mvm_runtime::home::mvm_home();
    let name = args.name.as_deref().map(InstanceName::parse).transpose()?;
    let policy = match &args.policy {
        Some(p) => mvm_plan::Policy::load(p)?,
        None => mvm_plan::Policy::load_or_default(&home)?,
    };
    let plan = args
        .plan
        .as_deref()
        .map(mvm_plan::PlanFile::read)
        .transpose()?;
    let progress = if args.json {
        Progress::Hidden
    } else {
        Progress::Stderr
    };
    // Held from before the boot assets are prepared (`cache clean` and
    // removals refuse meanwhile) until the instance's record names them.
    let _store = mvm_runtime::store::hold(&home)?;
    if let Some(tag) = &args.from_snapshot {
        let boot = assets::boot_assets(&assets::cache_dir()?, progress)?;
        let opts = mvm_runtime::lifecycle::ForkOptions {
            name,
            supervisor: SupervisorCommand::current_exe()?,
            admission: Some(AdmissionRequest { policy, plan }),
            ready_timeout: Some(Duration::from_secs(args.timeout_ready)),
            lease: None,
        };
        let outcome = mvm_runtime::lifecycle::up_from_snapshot(&home, tag, &boot, &opts)?;
        print_outcome(&outcome, args.json)?;
        return Ok(0);
    }
    let target = match (&args.target, &plan) {
        (Some(t), _) => t.clone(),
        (None, Some(p)) => plan_image_id(p)?,
        (None, None) => unreachable!("clap requires TARGET without --plan"),
    };
    let image = mvm_runtime::image::resolve(&home, &target)?;
    let boot = assets::boot_assets(&assets::cache_dir()?, progress)?;
    let opts = UpOptions {
        name,
        ready_timeout: Duration::from_secs(args.timeout_ready),
        supervisor: SupervisorCommand::current_exe()?,
        admission: Some(AdmissionRequest { policy, plan }),
        network: mvm_runtime::network::NetworkOptions {
            allow_private: args.allow_private_egress.clone(),
            pins: args.egress_pin.clone(),
            publish_address: args.publish_address,
            max_connections: args.egress_max_connections,
            max_rate: args.egress_max_rate,
            idle_secs: args.egress_idle_timeout,
        },
        broker: mvm_runtime::broker::BrokerOptions {
            ca_bundle: args.ca_bundle.clone(),
            search_url: args.web_search.clone(),
            search_key: args.web_search_key.clone(),
        },
        start: if args.cold {
            up::StartChoice::Cold
        } else {
            up::StartChoice::Auto
        },
        lease: None,
    };
    let outcome = up::up_image(&home, image, &boot, &opts)?;
    print_outcome(&outcome, args.json)?;
    Ok(0)
}

/// `up`'s answer: JSON on stdout, or the human lines on stderr and the
/// name on stdout.
pub fn print_outcome(outcome: &UpOutcome, json: bool) -> anyhow::Result<()> {
    if json {
        for w in &outcome.warnings {
            eprintln!("warning: {w}");
        }
        println!("{}", serde_json::to_string_pretty(outcome)?);
    } else {
        print_ready(outcome);
    }
    Ok(())
}

/// The image a plan names, to look it up before admission verifies the
/// plan (which then checks the image is exactly that one). Only an image
/// id is accepted: the plan is not yet trusted to name anything else.
fn plan_image_id(plan: &mvm_plan::PlanFile) -> anyhow::Result<String> {
    // plan() checks the id is 64 hex digits before anything uses it.
    Ok(plan.plan()?.image.id)
}

fn print_ready(o: &UpOutcome) {
    for w in &o.warnings {
        eprintln!("warning: {w}");
    }
    for p in &o.ports {
        eprintln!("{}: published {}", o.name, p.describe());
    }
    let t = &o.timings;
    let secs = |ms: u64| format!("{:.1}s", ms as f64 / 1000.0);
    let by = o.started_by.as_deref().unwrap_or("boot");
    if let Some(reason) = by.strip_prefix("boot (template unusable: ") {
        eprintln!(
            "warning: the template snapshot could not be used, booted instead: {}",
            reason.trim_end_matches(')')
        );
    }
    let start = match by {
        "template" => format!("restored {}", secs(t.boot_ms)),
        "resume" => format!("resumed {}", secs(t.boot_ms)),
        s if s.starts_with("snapshot ") => format!("restored from {s} {}", secs(t.boot_ms)),
        _ => format!("boot {}", secs(t.boot_ms)),
    };
    let lifecycle = if by == "resume" || by.starts_with("snapshot ") {
        String::new()
    } else {
        format!(
            ", configure {} ms, before_start {} ms, after_start {} ms",
            t.configure_ms, t.before_start_ms, t.after_start_ms
        )
    };
    eprintln!(
        "{}: ready in {} ({start}{lifecycle})",
        o.name,
        secs(t.total_ms),
    );
    if t.capture_ms > 0 {
        eprintln!(
            "{}: saved a template snapshot in {} (later ups of this image restore it)",
            o.name,
            secs(t.capture_ms)
        );
    }
    println!("{}", o.name);
}
