//! The plan document: what `up` would launch, stated so a reviewer can
//! read it and a verifier can check every part of it against the host.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use mvm_launch::{
    Entrypoint, EnvValue, HookCmd, HookPhase, Launch, Network, Resources, ThreatTier,
};

/// The plan format this mvm writes and reads.
pub const PLAN_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub plan_version: u32,
    /// The mvmctl that wrote the plan.
    pub mvm_version: String,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// The plan is refused before this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// The plan is refused from this time on (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// When present, the plan is admitted once on this host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub workload_id: String,
    pub app_name: String,
    pub ir_hash: String,
    pub image: ImageDigests,
    pub boot: BootDigests,
    pub resources: Resources,
    pub network: Network,
    /// Names of the secrets the environment references (never values).
    pub secrets: Vec<String>,
    pub hooks: BTreeMap<HookPhase, Vec<HookCmd>>,
    pub entrypoints: Vec<Entrypoint>,
    pub primary_entrypoint: String,
    pub threat_tier: ThreatTier,
}

/// The image, by content: a rebuilt or edited image has other digests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageDigests {
    pub id: String,
    pub rootfs_sha256: String,
    pub image_lock_sha256: String,
    pub launch_json_sha256: String,
}

/// What the guest boots besides the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootDigests {
    pub kernel_sha256: String,
    pub initramfs_sha256: String,
}

/// When a plan may be used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    pub not_before: Option<OffsetDateTime>,
    pub not_after: Option<OffsetDateTime>,
}

impl Plan {
    /// The plan for `launch` with the given digests, created `now`.
    pub fn new(
        launch: &Launch,
        image: ImageDigests,
        boot: BootDigests,
        now: OffsetDateTime,
        window: Window,
        nonce: Option<String>,
    ) -> Plan {
        Plan {
            plan_version: PLAN_VERSION,
            mvm_version: env!("CARGO_PKG_VERSION").to_string(),
            created_at: rfc3339(now),
            not_before: window.not_before.map(rfc3339),
            not_after: window.not_after.map(rfc3339),
            nonce,
            workload_id: launch.workload_id.clone(),
            app_name: launch.app_name.clone(),
            ir_hash: launch.ir_hash.clone(),
            image,
            boot,
            resources: launch.resources,
            network: launch.network.clone(),
            secrets: secret_names(launch),
            hooks: launch.hooks.clone(),
            entrypoints: launch.entrypoints.clone(),
            primary_entrypoint: launch.primary_entrypoint.clone(),
            threat_tier: launch.threat_tier,
        }
    }

    /// What serde cannot say about a plan's values: every digest is 64
    /// lowercase hex digits, a nonce is short printable ASCII. The first
    /// violation as (JSON path, message).
    pub fn check_shape(&self) -> Result<(), (String, String)> {
        let digests = [
            ("ir_hash", &self.ir_hash),
            ("image.id", &self.image.id),
            ("image.rootfs_sha256", &self.image.rootfs_sha256),
            ("image.image_lock_sha256", &self.image.image_lock_sha256),
            ("image.launch_json_sha256", &self.image.launch_json_sha256),
            ("boot.kernel_sha256", &self.boot.kernel_sha256),
            ("boot.initramfs_sha256", &self.boot.initramfs_sha256),
        ];
        for (path, v) in digests {
            if !is_sha256_hex(v) {
                return Err((
                    path.into(),
                    "must be 64 lowercase hex digits (a SHA-256)".into(),
                ));
            }
        }
        if let Some(n) = &self.nonce
            && (n.is_empty() || n.len() > 128 || !n.bytes().all(|b| b.is_ascii_graphic()))
        {
            return Err((
                "nonce".into(),
                "must be 1 to 128 printable ASCII characters".into(),
            ));
        }
        Ok(())
    }

    /// The plan's window, parsed; a malformed time is an error naming the field.
    pub fn window(&self) -> Result<Window, String> {
        let parse = |field: &str, v: &Option<String>| -> Result<Option<OffsetDateTime>, String> {
            v.as_deref()
                .map(|s| {
                    OffsetDateTime::parse(s, &Rfc3339)
                        .map_err(|e| format!("{field}: `{s}` is not an RFC 3339 time ({e})"))
                })
                .transpose()
        };
        Ok(Window {
            not_before: parse("not_before", &self.not_before)?,
            not_after: parse("not_after", &self.not_after)?,
        })
    }

    /// The first field where this plan's statement of the workload differs
    /// from `launch` (the image's own contract), as a JSON path.
    pub fn mismatch(&self, launch: &Launch) -> Option<&'static str> {
        let checks: [(&'static str, bool); 11] = [
            ("workload_id", self.workload_id == launch.workload_id),
            ("app_name", self.app_name == launch.app_name),
            ("ir_hash", self.ir_hash == launch.ir_hash),
            ("resources", self.resources == launch.resources),
            ("network", self.network == launch.network),
            ("secrets", self.secrets == secret_names(launch)),
            ("hooks", self.hooks == launch.hooks),
            ("entrypoints", self.entrypoints == launch.entrypoints),
            (
                "primary_entrypoint",
                self.primary_entrypoint == launch.primary_entrypoint,
            ),
            ("threat_tier", self.threat_tier == launch.threat_tier),
            ("plan_version", self.plan_version == PLAN_VERSION),
        ];
        checks.iter().find(|(_, same)| !same).map(|(f, _)| *f)
    }
}

/// 64 lowercase hex digits.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The distinct secret names `launch`'s environment references, sorted.
pub fn secret_names(launch: &Launch) -> Vec<String> {
    let mut names: Vec<String> = launch
        .env
        .values()
        .filter_map(|v| match v {
            EnvValue::SecretRef { name, .. } => Some(name.clone()),
            EnvValue::Literal { .. } => None,
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// RFC 3339 in UTC, to the second: what plans and messages show.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// A fresh single-use nonce: 128 random bits, hex.
pub fn new_nonce() -> String {
    use rand_core::RngCore;
    let mut b = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut b);
    crate::replay::hex(&b)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn launch() -> Launch {
        let phases = ["before_build", "before_start", "after_start", "before_stop"];
        let v = serde_json::json!({
            "launch_version": mvm_launch::LAUNCH_VERSION, "workload_id": "hello", "app_name": "hello",
            "ir_hash": "a".repeat(64), "schema_version": "0.1", "toolchain": {"mvmctl": "0.1.0"},
            "image": {"kind": "nix_packages", "packages": ["python3"]},
            "dependencies": {"kind": "none"},
            "resources": {"cpu_cores": 2, "memory_mib": 256, "rootfs_size_mib": 512},
            "network": {"mode": "none", "ports": [], "egress": {"allowlist": []}, "dns": {"kind": "none"}},
            "env": {"MODEL": {"kind": "literal", "value": "m"},
                    "API_KEY": {"kind": "secret_ref", "name": "api-key", "type": "token", "header": null, "hosts": []},
                    "API_KEY2": {"kind": "secret_ref", "name": "api-key", "type": "token", "header": null, "hosts": []}},
            "entrypoints": [
                {"kind": "function", "name": "greet", "language": "python", "module": "app",
                 "function": "greet", "format": "json", "working_dir": "/app", "primary": true}
            ],
            "primary_entrypoint": "greet",
            "hooks": phases.iter().map(|p| (p.to_string(), serde_json::json!([]))).collect::<serde_json::Map<_, _>>(),
            "hook_scripts": phases.iter().map(|p| (p.to_string(), serde_json::json!(format!("hooks/{p}.sh")))).collect::<serde_json::Map<_, _>>(),
            "mounts": [], "volumes": [], "threat_tier": "untrusted",
            "source": {"files": 1, "tree_hash": "b".repeat(64)},
        });
        mvm_launch::parse(v.to_string().as_bytes()).unwrap()
    }

    pub(crate) fn plan(launch: &Launch) -> Plan {
        let d = |c: char| c.to_string().repeat(64);
        Plan::new(
            launch,
            ImageDigests {
                id: d('1'),
                rootfs_sha256: d('2'),
                image_lock_sha256: d('3'),
                launch_json_sha256: d('4'),
            },
            BootDigests {
                kernel_sha256: d('5'),
                initramfs_sha256: d('6'),
            },
            OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
            Window::default(),
            None,
        )
    }

    #[test]
    fn a_plan_states_the_launch_and_names_secrets_once() {
        let l = launch();
        let p = plan(&l);
        assert_eq!(p.secrets, ["api-key"]);
        assert_eq!(p.created_at, "2027-01-15T08:00:00Z");
        assert_eq!(p.mismatch(&l), None);
        let json = serde_json::to_string(&p).unwrap();
        assert!(
            !json.contains("\"m\""),
            "literal env values are not in the plan"
        );
        assert_eq!(serde_json::from_str::<Plan>(&json).unwrap(), p);
    }

    #[test]
    fn mismatch_names_the_first_differing_field() {
        let l = launch();
        let mut p = plan(&l);
        p.resources.cpu_cores = 8;
        assert_eq!(p.mismatch(&l), Some("resources"));
        let mut p = plan(&l);
        p.network.ports.push(mvm_launch::PortForward {
            guest: 80,
            host: 8080,
            proto: mvm_launch::Proto::Tcp,
        });
        assert_eq!(p.mismatch(&l), Some("network"));
    }

    #[test]
    fn windows_parse_or_name_the_field() {
        let l = launch();
        let mut p = plan(&l);
        p.not_after = Some("tomorrow".into());
        assert!(p.window().unwrap_err().starts_with("not_after:"));
        p.not_after = Some("2027-01-15T09:00:00Z".into());
        assert_eq!(
            p.window().unwrap().not_after.unwrap().unix_timestamp(),
            1_800_003_600
        );
    }

    #[test]
    fn nonces_are_fresh() {
        let (a, b) = (new_nonce(), new_nonce());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
