//! `mvmctl plan`, `mvmctl sign`, `mvmctl verify`: state what would run,
//! sign that statement, and check a signed one against this host.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use mvm_plan::{PlanFile, Policy, TrustStores, Window};
use mvm_runtime::assets::{self, Progress};

use super::EXIT_REJECTED;

/// Describe exactly what `mvmctl up TARGET` would run: workload, image and
/// boot digests, resources, network, secret names, hooks, entrypoints.
/// The output is a bare plan to review; `mvmctl sign` signs it.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Image id, workload name, or compiled directory (as for `up`).
    pub target: String,
    /// Where to write the plan (default: stdout).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The plan expires this long after now (e.g. `1h`, `7days`).
    #[arg(long, value_name = "DURATION")]
    pub valid_for: Option<String>,
    /// The plan is not valid before this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub not_before: Option<String>,
    /// Add a random nonce: the plan is admitted once on a host.
    #[arg(long)]
    pub single_use: bool,
}

/// Sign a plan with a key from `mvmctl key`. A bare plan becomes a DSSE
/// envelope; an envelope gets one more signature.
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The plan file (rewritten in place unless --out is given).
    pub plan: PathBuf,
    /// The key to sign with.
    #[arg(long, value_name = "NAME")]
    pub key: String,
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Check a plan: signatures against the policy's trusted keys, its
/// validity window, and every digest against this host's image and boot
/// files. Prints who signed what; exit status 2 when anything fails.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    pub plan: PathBuf,
    /// Policy file (default: $MVM_HOME/policy.toml).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Also trust this public key file (`mvmctl key export` output).
    #[arg(long, value_name = "FILE")]
    pub key: Vec<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn plan(args: PlanArgs) -> anyhow::Result<i32> {
    let home = mvm_runtime::home::mvm_home();
    let image = mvm_runtime::image::resolve(&home, &args.target)?;
    let boot = assets::boot_assets(&assets::cache_dir()?, Progress::Stderr)?;
    let now = OffsetDateTime::now_utc();
    let not_after = match &args.valid_for {
        None => None,
        Some(d) => {
            let d = humantime::parse_duration(d).with_context(|| {
                format!("--valid-for `{d}`: use a duration such as 30m, 1h or 7days")
            })?;
            Some(now + d)
        }
    };
    let not_before = match &args.not_before {
        None => None,
        Some(t) => Some(OffsetDateTime::parse(t, &Rfc3339).with_context(|| {
            format!("--not-before `{t}`: use an RFC 3339 time such as 2026-12-24T09:00:00Z")
        })?),
    };
    if let (Some(nb), Some(na)) = (not_before, not_after)
        && nb >= na
    {
        anyhow::bail!(
            "--not-before is not before the end of --valid-for: the plan would never be valid"
        );
    }
    let nonce = args.single_use.then(mvm_plan::plan::new_nonce);
    let plan = mvm_runtime::admission::make_plan(
        &home,
        &image,
        &boot,
        Window {
            not_before,
            not_after,
        },
        nonce,
    )?;
    let mut bytes = serde_json::to_vec_pretty(&plan)?;
    bytes.push(b'\n');
    match &args.out {
        Some(out) => {
            write_staged(out, &bytes)?;
            eprintln!(
                "wrote the plan for `{}` (image {}) to {}; review it, then `mvmctl sign {} --key NAME`",
                plan.app_name,
                plan.image.id.chars().take(16).collect::<String>(),
                out.display(),
                out.display()
            );
        }
        None => std::io::stdout().write_all(&bytes)?,
    }
    Ok(0)
}

pub fn sign(args: SignArgs) -> anyhow::Result<i32> {
    let home = mvm_runtime::home::mvm_home();
    let file = PlanFile::read(&args.plan)?;
    let ring = mvm_keys::KeyRing::new(&home.join("keys"))?;
    let signer = ring.signer(&args.key)?;
    let bytes = file.sign(&signer)?;
    let out = args.out.as_deref().unwrap_or(&args.plan);
    write_staged(out, &bytes)?;
    let public = signer.public();
    eprintln!(
        "signed plan {} with key {} ({}); wrote {}",
        file.plan_sha256().chars().take(16).collect::<String>(),
        public.label(),
        public.key_id(),
        out.display()
    );
    Ok(0)
}

#[derive(serde::Serialize)]
struct VerifyReport {
    plan_sha256: String,
    app_name: Option<String>,
    image_id: Option<String>,
    signed_by: Vec<mvm_plan::SignedBy>,
    untrusted_key_ids: Vec<String>,
    window: Option<String>,
    single_use: bool,
    digests: Option<usize>,
    /// The first failed check, as `CODE (check): detail`; none when ok.
    problem: Option<String>,
}

pub fn verify(args: VerifyArgs) -> anyhow::Result<i32> {
    let home = mvm_runtime::home::mvm_home();
    let mut policy = match &args.policy {
        Some(p) => Policy::load(p)?,
        None => Policy::load_or_default(&home)?,
    };
    for k in &args.key {
        let text =
            std::fs::read_to_string(k).with_context(|| format!("reading {}", k.display()))?;
        let key = mvm_keys::PublicKey::parse_at(text.trim(), &k.display().to_string())?;
        policy.trusted_keys.push(key);
    }
    let file = PlanFile::read(&args.plan)?;
    let mut report = VerifyReport {
        plan_sha256: file.plan_sha256(),
        app_name: None,
        image_id: None,
        signed_by: Vec::new(),
        untrusted_key_ids: Vec::new(),
        window: None,
        single_use: false,
        digests: None,
        problem: None,
    };
    let outcome = check(&home, &policy, &file, &mut report);
    if let Err(problem) = outcome {
        report.problem = Some(problem);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report, &args.plan);
    }
    Ok(if report.problem.is_none() {
        0
    } else {
        EXIT_REJECTED
    })
}

/// Verification as `up --plan` would do it, minus the nonce (which only
/// admission consumes) and the limits (checked against the plan's image).
fn check(
    home: &Path,
    policy: &Policy,
    file: &PlanFile,
    report: &mut VerifyReport,
) -> Result<(), String> {
    // A verifier asks "who signed this": an unsigned plan fails here
    // whatever require_signed says.
    let verified = file
        .verify(&policy.trusted_keys, true)
        .map_err(|r| r.to_string())?;
    report.signed_by = verified.signers.clone();
    report.untrusted_key_ids = verified.untrusted.clone();
    let plan = &verified.plan;
    report.app_name = Some(plan.app_name.clone());
    report.image_id = Some(plan.image.id.clone());
    report.single_use = plan.nonce.is_some();
    report.window = Some(match (&plan.not_before, &plan.not_after) {
        (None, None) => "no validity window".into(),
        (nb, na) => format!(
            "valid from {} until {}",
            nb.as_deref().unwrap_or("creation"),
            na.as_deref().unwrap_or("revoked")
        ),
    });
    mvm_plan::admit::check_window(plan, OffsetDateTime::now_utc()).map_err(|r| r.to_string())?;
    let id = &plan.image.id;
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("the plan's image id `{id}` is not an image id"));
    }
    let image = mvm_runtime::image::resolve(home, id)
        .map_err(|e| format!("the plan's image {} is not on this host: {e}", &id[..16]))?;
    let launch = mvm_runtime::launch::load(&image.launch_json).map_err(|e| e.to_string())?;
    if let Some(field) = plan.mismatch(&launch) {
        return Err(format!(
            "A_PLAN_MISMATCH ({field}): the plan's `{field}` differs from the image's launch.json"
        ));
    }
    let boot = assets::boot_assets(
        &assets::cache_dir().map_err(|e| e.to_string())?,
        Progress::Hidden,
    )
    .map_err(|e| e.to_string())?;
    let stores = TrustStores::open(home).map_err(|e| e.to_string())?;
    let files = mvm_runtime::admission::launch_files(&image, &boot);
    let (n, _) =
        mvm_plan::admit::check_digests(plan, &files, &stores.digests).map_err(|r| r.to_string())?;
    report.digests = Some(n);
    Ok(())
}

fn print_report(r: &VerifyReport, path: &Path) {
    // Everything here came from the plan or the policy: escaped, so no
    // field can forge a line or drive the terminal.
    let t = |s: &str| mvm_ir::text::for_terminal(s).into_owned();
    let short = |s: &str| t(&s.chars().take(16).collect::<String>());
    println!(
        "plan {} ({})",
        short(&r.plan_sha256),
        t(&path.display().to_string())
    );
    if let (Some(app), Some(image)) = (&r.app_name, &r.image_id) {
        println!("  workload: {}, image {}", t(app), short(image));
    }
    for s in &r.signed_by {
        println!(
            "  signed by: {} (key {}), trusted",
            t(&s.label),
            t(&s.key_id)
        );
    }
    for k in &r.untrusted_key_ids {
        println!("  signed by: key {}, NOT trusted here", t(k));
    }
    if let Some(w) = &r.window {
        println!(
            "  {}{}",
            t(w),
            if r.single_use { "; single use" } else { "" }
        );
    }
    if let Some(n) = r.digests {
        println!("  digests: {n} files match (rootfs, image.lock, launch.json, kernel, initramfs)");
    }
    match &r.problem {
        None => println!("ok"),
        Some(p) => println!("REFUSED: {}", t(p)),
    }
}

/// Writes `bytes` to `path` through a staged file in the same directory,
/// renamed into place: a reader never sees half a plan.
fn write_staged(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".plan.")
        .tempfile_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
