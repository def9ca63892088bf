//! Admission: whether this launch may run here, decided before anything
//! boots. Every check refuses with its own code (docs/plans-and-audit.md).

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use mvm_launch::{Dns, Launch, NetworkMode, ThreatTier};

use crate::envelope::{PlanFile, SignedBy};
use crate::plan::{Plan, rfc3339, secret_names};
use crate::policy::Policy;
use crate::{DigestCache, PlanError, Refusal, ReplayStore};

/// The files a launch boots, each of which a plan pins by digest.
#[derive(Debug, Clone)]
pub struct LaunchFiles {
    pub image_id: String,
    pub rootfs: PathBuf,
    /// `None` for an image without one (made outside the store).
    pub image_lock: Option<PathBuf>,
    pub launch_json: PathBuf,
    /// The SHA-256 of the launch.json bytes the caller parsed, when it
    /// has them: compared instead of hashing the file again by path.
    pub launch_json_sha256: Option<String>,
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
}

/// The host's admission state: `$MVM_HOME/trust/{digests,nonces}`.
pub struct TrustStores {
    pub digests: DigestCache,
    pub nonces: ReplayStore,
}

impl TrustStores {
    pub fn open(home: &Path) -> Result<TrustStores, PlanError> {
        let trust = home.join("trust");
        Ok(TrustStores {
            digests: DigestCache::new(&trust.join("digests"))?,
            nonces: ReplayStore::new(&trust.join("nonces"))?,
        })
    }
}

/// What admission found, for the audit trail and for `up`'s caller.
#[derive(Debug, Clone, Default)]
pub struct Admitted {
    /// The admitted plan's identity (SHA-256 of its payload), if any.
    pub plan_sha256: Option<String>,
    pub signers: Vec<SignedBy>,
    /// Files hashed, and how many of those answers came from the cache.
    pub digests_checked: usize,
    pub digests_cached: usize,
}

fn refuse(code: &'static str, check: &str, detail: String, hint: &str) -> Refusal {
    Refusal {
        code,
        check: check.into(),
        detail,
        hint: hint.into(),
    }
}

/// The policy's limits, which apply to every launch, planned or not.
pub fn check_limits(policy: &Policy, launch: &Launch) -> Result<(), Refusal> {
    let l = &policy.limits;
    let src = policy.describe();
    if let Some(max) = l.max_cpus
        && launch.resources.cpu_cores > max
    {
        return Err(refuse(
            "A_LIMIT_CPUS",
            "limits.max_cpus",
            format!(
                "{} CPUs requested; {src} allows at most {max}",
                launch.resources.cpu_cores
            ),
            "lower resources(cpu=...) or raise limits.max_cpus",
        ));
    }
    if let Some(max) = l.max_memory_mib
        && launch.resources.memory_mib > max
    {
        return Err(refuse(
            "A_LIMIT_MEMORY",
            "limits.max_memory_mib",
            format!(
                "{} MiB of memory requested; {src} allows at most {max}",
                launch.resources.memory_mib
            ),
            "lower resources(memory=...) or raise limits.max_memory_mib",
        ));
    }
    let mode = launch.network.mode;
    if mode == NetworkMode::Host && launch.threat_tier == ThreatTier::Untrusted {
        return Err(refuse(
            "A_NETWORK_MODE",
            "network.mode",
            "network mode `host` for an untrusted workload: it would share the host's network"
                .into(),
            "use mode `bridge` with egress grants; host mode needs a trusted workload and a policy that allows it",
        ));
    }
    if !l.network_modes.contains(&mode) {
        let allowed: Vec<&str> = l.network_modes.iter().map(|m| m.as_str()).collect();
        return Err(refuse(
            "A_NETWORK_MODE",
            "limits.network_modes",
            format!(
                "network mode `{}`; {src} allows only [{}]",
                mode.as_str(),
                allowed.join(", ")
            ),
            "change the workload's network mode or limits.network_modes",
        ));
    }
    if !l.allow_private_egress {
        let mut hosts: Vec<(String, &str)> = launch
            .network
            .egress
            .allowlist
            .iter()
            .map(|g| (format!("{}:{}", g.host, g.port), g.host.as_str()))
            .collect();
        if let Dns::Resolver { host, port } = &launch.network.dns {
            hosts.push((format!("DNS resolver {host}:{port}"), host.as_str()));
        }
        for (what, host) in hosts {
            if let Some(class) = mvm_ir::validate::host::host_class(host) {
                return Err(refuse(
                    "A_PRIVATE_EGRESS",
                    "limits.allow_private_egress",
                    format!("egress to {what}, {class}; {src} forbids private destinations"),
                    "grant a public host, or set limits.allow_private_egress = true",
                ));
            }
        }
    }
    if let Some(allowed) = &l.secrets {
        for name in secret_names(launch) {
            if !allowed.contains(&name) {
                return Err(refuse(
                    "A_SECRET_NOT_ALLOWED",
                    "limits.secrets",
                    format!("the workload references secret `{name}`, which {src} does not list"),
                    "add the name to limits.secrets or drop the reference",
                ));
            }
        }
    }
    Ok(())
}

/// The plan's validity window against `now`.
pub fn check_window(plan: &Plan, now: OffsetDateTime) -> Result<(), Refusal> {
    let w = plan.window().map_err(|e| {
        refuse(
            "A_BAD_PLAN",
            "validity window",
            e,
            "write plans with `mvmctl plan`",
        )
    })?;
    if let Some(nb) = w.not_before
        && now < nb
    {
        return Err(refuse(
            "A_NOT_YET_VALID",
            "validity window",
            format!(
                "the plan is valid from {}; it is {}",
                rfc3339(nb),
                rfc3339(now)
            ),
            "wait, or sign a plan whose window has begun",
        ));
    }
    if let Some(na) = w.not_after
        && now >= na
    {
        return Err(refuse(
            "A_EXPIRED",
            "validity window",
            format!(
                "the plan expired at {}; it is {}",
                rfc3339(na),
                rfc3339(now)
            ),
            "make and sign a new plan (`mvmctl plan`, `mvmctl sign`)",
        ));
    }
    Ok(())
}

/// Each pinned file hashed (through the cache) and compared to the plan.
/// Returns (files checked, answers from the cache).
pub fn check_digests(
    plan: &Plan,
    files: &LaunchFiles,
    cache: &DigestCache,
) -> Result<(usize, usize), Refusal> {
    if plan.image.id != files.image_id {
        return Err(refuse(
            "A_PLAN_MISMATCH",
            "image",
            format!(
                "the plan is for image {}, not {}",
                short(&plan.image.id),
                short(&files.image_id)
            ),
            "launch the image the plan names: `mvmctl up --plan PLAN`",
        ));
    }
    let Some(lock) = &files.image_lock else {
        return Err(refuse(
            "A_DIGEST_MISMATCH",
            "image.lock",
            "the image has no image.lock, so it cannot match a plan".into(),
            "build the image with `mvmctl build`",
        ));
    };
    let pinned: [(&str, &Path, &str); 5] = [
        ("rootfs.ext4", &files.rootfs, &plan.image.rootfs_sha256),
        ("image.lock", lock, &plan.image.image_lock_sha256),
        (
            "launch.json",
            &files.launch_json,
            &plan.image.launch_json_sha256,
        ),
        ("kernel", &files.kernel, &plan.boot.kernel_sha256),
        ("initramfs", &files.initramfs, &plan.boot.initramfs_sha256),
    ];
    let mut cached = 0;
    for (what, path, want) in pinned {
        let known = match what {
            "launch.json" => files.launch_json_sha256.clone().map(|d| (d, false)),
            _ => None,
        };
        let (got, hit) = known
            .map(Ok)
            .unwrap_or_else(|| cache.sha256_file(path))
            .map_err(|e| {
                refuse(
                    "A_DIGEST_MISMATCH",
                    what,
                    format!("cannot hash {what}: {e}"),
                    "the files the plan pins must be present and readable",
                )
            })?;
        cached += hit as usize;
        if got != want {
            return Err(refuse(
                "A_DIGEST_MISMATCH",
                what,
                format!(
                    "{} has sha256 {}, the plan says {}",
                    path.display(),
                    short(&got),
                    short(want)
                ),
                "the file changed since the plan was made: rebuild, re-plan and re-sign, or restore it",
            ));
        }
    }
    Ok((pinned.len(), cached))
}

/// The first 16 characters, for messages (never a byte slice: a digest
/// from an unchecked file may hold anything).
fn short(h: &str) -> String {
    h.chars().take(16).collect()
}

/// Everything admission checks, in order: a plan when one is required,
/// the limits, the plan's signatures, window, statement and digests, and
/// last its nonce (so a refused plan keeps its nonce).
pub fn admit(
    policy: &Policy,
    plan: Option<&PlanFile>,
    launch: &Launch,
    files: &LaunchFiles,
    stores: &TrustStores,
    now: OffsetDateTime,
) -> Result<Admitted, Refusal> {
    let Some(plan_file) = plan else {
        if policy.require_signed {
            return Err(refuse(
                "A_PLAN_REQUIRED",
                "require_signed",
                format!(
                    "{} requires a signed plan for every launch",
                    policy.describe()
                ),
                "run `mvmctl plan TARGET --out plan.json`, have it signed (`mvmctl sign`), then `mvmctl up --plan plan.json`",
            ));
        }
        check_limits(policy, launch)?;
        return Ok(Admitted::default());
    };
    check_limits(policy, launch)?;
    let verified = plan_file.verify(&policy.trusted_keys, policy.require_signed)?;
    let plan = &verified.plan;
    check_window(plan, now)?;
    if let Some(field) = plan.mismatch(launch) {
        return Err(refuse(
            "A_PLAN_MISMATCH",
            field,
            format!("the plan's `{field}` differs from the image's launch.json"),
            "the plan does not describe this image: make a new plan with `mvmctl plan`",
        ));
    }
    let (checked, cached) = check_digests(plan, files, &stores.digests)?;
    if let Some(nonce) = &plan.nonce {
        stores.nonces.consume(nonce, &verified.plan_sha256)?;
    }
    Ok(Admitted {
        plan_sha256: Some(verified.plan_sha256),
        signers: verified.signers,
        digests_checked: checked,
        digests_cached: cached,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::{launch, plan};

    fn policy(f: impl FnOnce(&mut Policy)) -> Policy {
        let mut p = Policy::default();
        f(&mut p);
        p
    }

    #[test]
    fn limits_refuse_with_their_codes() {
        let l = launch();
        assert!(check_limits(&Policy::default(), &l).is_ok());
        let code = |p: &Policy, l: &Launch| check_limits(p, l).unwrap_err().code;
        assert_eq!(
            code(&policy(|p| p.limits.max_cpus = Some(1)), &l),
            "A_LIMIT_CPUS"
        );
        assert_eq!(
            code(&policy(|p| p.limits.max_memory_mib = Some(128)), &l),
            "A_LIMIT_MEMORY"
        );
        assert_eq!(
            code(
                &policy(|p| p.limits.secrets = Some(vec!["other".into()])),
                &l
            ),
            "A_SECRET_NOT_ALLOWED"
        );
        let mut bridge = l.clone();
        bridge.network.mode = NetworkMode::Bridge;
        assert_eq!(
            code(
                &policy(|p| p.limits.network_modes = vec![NetworkMode::None]),
                &bridge
            ),
            "A_NETWORK_MODE"
        );
        let mut host = l.clone();
        host.network.mode = NetworkMode::Host;
        let allow_host = policy(|p| p.limits.network_modes.push(NetworkMode::Host));
        assert_eq!(
            code(&allow_host, &host),
            "A_NETWORK_MODE",
            "untrusted never gets host"
        );
        host.threat_tier = ThreatTier::Trusted;
        assert!(check_limits(&allow_host, &host).is_ok());
        assert_eq!(code(&Policy::default(), &host), "A_NETWORK_MODE");

        for h in [
            "127.0.0.1",
            "10.1.2.3",
            "169.254.169.254",
            "metadata.google.internal",
            "[::1]",
        ] {
            let mut g = bridge.clone();
            g.network.egress.allowlist = vec![mvm_launch::HostPort {
                host: h.into(),
                port: 443,
            }];
            assert_eq!(code(&Policy::default(), &g), "A_PRIVATE_EGRESS", "{h}");
            assert!(check_limits(&policy(|p| p.limits.allow_private_egress = true), &g).is_ok());
        }
        let mut g = bridge.clone();
        g.network.egress.allowlist = vec![mvm_launch::HostPort {
            host: "api.openai.com".into(),
            port: 443,
        }];
        assert!(check_limits(&Policy::default(), &g).is_ok());
    }

    #[test]
    fn windows_refuse_before_and_after() {
        let l = launch();
        let mut p = plan(&l);
        let t = |s: i64| OffsetDateTime::from_unix_timestamp(s).unwrap();
        p.not_before = Some(rfc3339(t(1000)));
        p.not_after = Some(rfc3339(t(2000)));
        assert_eq!(
            check_window(&p, t(999)).unwrap_err().code,
            "A_NOT_YET_VALID"
        );
        assert!(check_window(&p, t(1000)).is_ok());
        assert!(check_window(&p, t(1999)).is_ok());
        assert_eq!(check_window(&p, t(2000)).unwrap_err().code, "A_EXPIRED");
    }

    /// A plan over real files, signed by `alice`, and admission of it.
    struct Fixture {
        t: tempfile::TempDir,
        ring: mvm_keys::KeyRing,
        files: LaunchFiles,
        launch: Launch,
    }

    impl Fixture {
        fn new() -> Fixture {
            let t = tempfile::tempdir().unwrap();
            let ring = mvm_keys::KeyRing::new(&t.path().join("keys")).unwrap();
            ring.generate("alice").unwrap();
            let f = |n: &str| {
                let p = t.path().join(n);
                std::fs::write(&p, n.as_bytes()).unwrap();
                p
            };
            let files = LaunchFiles {
                image_id: "1".repeat(64),
                rootfs: f("rootfs.ext4"),
                image_lock: Some(f("image.lock")),
                launch_json: f("launch.json"),
                launch_json_sha256: None,
                kernel: f("vmlinuz"),
                initramfs: f("initrd"),
            };
            Fixture {
                launch: launch(),
                t,
                ring,
                files,
            }
        }

        fn plan(&self, edit: impl FnOnce(&mut Plan)) -> PlanFile {
            let cache = DigestCache::new(&self.t.path().join("c")).unwrap();
            let h = |p: &Path| cache.sha256_file(p).unwrap().0;
            let mut p = plan(&self.launch);
            p.image.id = self.files.image_id.clone();
            p.image.rootfs_sha256 = h(&self.files.rootfs);
            p.image.image_lock_sha256 = h(self.files.image_lock.as_ref().unwrap());
            p.image.launch_json_sha256 = h(&self.files.launch_json);
            p.boot.kernel_sha256 = h(&self.files.kernel);
            p.boot.initramfs_sha256 = h(&self.files.initramfs);
            edit(&mut p);
            let path = self.t.path().join("plan.json");
            let bare = PlanFile::parse(&path, &serde_json::to_vec(&p).unwrap()).unwrap();
            let signed = bare.sign(&self.ring.signer("alice").unwrap()).unwrap();
            PlanFile::parse(&path, &signed).unwrap()
        }

        fn policy(&self) -> Policy {
            policy(|p| {
                p.require_signed = true;
                p.trusted_keys = vec![self.ring.public("alice").unwrap()];
            })
        }

        fn admit(&self, policy: &Policy, plan: Option<&PlanFile>) -> Result<Admitted, Refusal> {
            let stores = TrustStores::open(self.t.path()).unwrap();
            let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
            admit(policy, plan, &self.launch, &self.files, &stores, now)
        }
    }

    #[test]
    fn a_signed_plan_is_admitted_and_names_its_signer() {
        let fx = Fixture::new();
        let a = fx.admit(&fx.policy(), Some(&fx.plan(|_| {}))).unwrap();
        assert_eq!(a.signers[0].label, "alice");
        assert_eq!((a.digests_checked, a.digests_cached), (5, 0));
        let a = fx.admit(&fx.policy(), Some(&fx.plan(|_| {}))).unwrap();
        assert_eq!(a.digests_cached, 5, "a second admission uses the cache");
        assert!(a.plan_sha256.is_some());
    }

    #[test]
    fn each_violation_refuses_with_its_own_code() {
        let fx = Fixture::new();
        let pol = fx.policy();
        let code = |r: Result<Admitted, Refusal>| r.unwrap_err().code;
        assert_eq!(code(fx.admit(&pol, None)), "A_PLAN_REQUIRED");
        let mut nonce = fx.plan(|p| p.nonce = Some("n-1".into()));
        assert!(fx.admit(&pol, Some(&nonce)).is_ok());
        assert_eq!(code(fx.admit(&pol, Some(&nonce))), "A_NONCE_REUSED");
        nonce = fx.plan(|p| p.nonce = Some("n-2".into()));
        let expired = fx.plan(|p| p.not_after = Some("2020-01-01T00:00:00Z".into()));
        assert_eq!(code(fx.admit(&pol, Some(&expired))), "A_EXPIRED");
        let early = fx.plan(|p| p.not_before = Some("2099-01-01T00:00:00Z".into()));
        assert_eq!(code(fx.admit(&pol, Some(&early))), "A_NOT_YET_VALID");
        let other = fx.plan(|p| p.resources.memory_mib = 4096);
        assert_eq!(code(fx.admit(&pol, Some(&other))), "A_PLAN_MISMATCH");
        let other_image = fx.plan(|p| p.image.id = "2".repeat(64));
        assert_eq!(code(fx.admit(&pol, Some(&other_image))), "A_PLAN_MISMATCH");

        // A refused plan keeps its nonce: it is consumed last.
        std::fs::write(&fx.files.kernel, b"another kernel").unwrap();
        let r = fx.admit(&pol, Some(&nonce)).unwrap_err();
        assert_eq!((r.code, r.check.as_str()), ("A_DIGEST_MISMATCH", "kernel"));
        std::fs::write(&fx.files.kernel, b"vmlinuz").unwrap();
        assert!(fx.admit(&pol, Some(&nonce)).is_ok());

        let before = fx.plan(|_| {});
        for (file, what) in [
            (fx.files.rootfs.clone(), "rootfs.ext4"),
            (fx.files.image_lock.clone().unwrap(), "image.lock"),
            (fx.files.launch_json.clone(), "launch.json"),
            (fx.files.initramfs.clone(), "initramfs"),
        ] {
            let good = std::fs::read(&file).unwrap();
            let mut bad = good.clone();
            bad[0] ^= 1;
            std::fs::write(&file, &bad).unwrap();
            let r = fx.admit(&pol, Some(&before)).unwrap_err();
            assert_eq!(
                (r.code, r.check.as_str()),
                ("A_DIGEST_MISMATCH", what),
                "{r}"
            );
            std::fs::write(&file, &good).unwrap();
        }
        assert!(
            fx.admit(&pol, Some(&before)).is_ok(),
            "restored files match again"
        );

        let mut untrusting = pol.clone();
        untrusting.trusted_keys.clear();
        assert_eq!(
            code(fx.admit(&untrusting, Some(&fx.plan(|_| {})))),
            "A_UNTRUSTED_KEY"
        );

        // Limits apply to planned launches too.
        let mut tight = pol.clone();
        tight.limits.max_cpus = Some(1);
        assert_eq!(
            code(fx.admit(&tight, Some(&fx.plan(|_| {})))),
            "A_LIMIT_CPUS"
        );
        // And to plain ones when no plan is required.
        tight.require_signed = false;
        assert_eq!(code(fx.admit(&tight, None)), "A_LIMIT_CPUS");
    }

    /// `up` parses launch.json once and hands admission the digest of
    /// those bytes: a file swapped for the planned one after the parse
    /// does not make the parsed (unplanned) launch pass.
    #[test]
    fn launch_json_is_checked_as_parsed_not_as_read_again() {
        let mut fx = Fixture::new();
        let pol = fx.policy();
        let plan = fx.plan(|_| {});
        fx.files.launch_json_sha256 = Some("e".repeat(64)); // what was parsed
        let r = fx.admit(&pol, Some(&plan)).unwrap_err();
        assert_eq!(
            (r.code, r.check.as_str()),
            ("A_DIGEST_MISMATCH", "launch.json")
        );
        let on_disk = DigestCache::new(&fx.t.path().join("c2"))
            .unwrap()
            .sha256_file(&fx.files.launch_json)
            .unwrap()
            .0;
        fx.files.launch_json_sha256 = Some(on_disk);
        assert!(fx.admit(&pol, Some(&plan)).is_ok());
    }
}
