//! The Workload IR v0.1 types (see `docs/ir.md`).
//!
//! These types serialize to the *full* canonical shape: every field present,
//! variants tagged by `kind`, snake_case names. Reading goes through
//! [`crate::decode`], which is strict (unknown fields are errors) and fills in
//! defaults; serde's derive is used only for writing and for the JSON Schema.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

/// The schema version this crate writes.
pub const SCHEMA_VERSION: &str = "0.1";

/// A whole workload: the unit `mvmctl compile` writes as `workload.json`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Workload {
    pub schema_version: String,
    pub id: String,
    /// Exactly one app in v0.1 (`E_APPS_COUNT` otherwise).
    pub apps: Vec<App>,
    #[schemars(default)]
    pub volumes: Vec<Volume>,
    /// Free-form data for other tools; kept verbatim, canonicalised on write.
    #[schemars(default)]
    pub extensions: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct App {
    pub name: String,
    pub source: Source,
    pub image: Image,
    #[schemars(default)]
    pub resources: Resources,
    #[schemars(default)]
    pub dependencies: Dependencies,
    #[schemars(default)]
    pub network: Network,
    #[schemars(default)]
    pub env: BTreeMap<String, EnvValue>,
    pub entrypoints: Vec<Entrypoint>,
    #[schemars(default)]
    pub hooks: Hooks,
    #[schemars(default)]
    pub addons: Vec<AddonUse>,
    #[schemars(default)]
    pub mounts: Vec<Mount>,
    #[schemars(default)]
    pub threat_tier: ThreatTier,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    LocalPath {
        /// Relative to the declaration (or IR file) directory; never absolute, never `..`.
        path: String,
        #[schemars(default = "default_include")]
        include: Vec<String>,
        #[schemars(default)]
        exclude: Vec<String>,
    },
    /// Reserved: `E_SOURCE_KIND_UNSUPPORTED`.
    OciImage { reference: String, digest: String },
    /// Reserved: `E_SOURCE_KIND_UNSUPPORTED`.
    NixDerivation { expr: String },
}

/// Default include glob of a `local_path` source.
pub fn default_include() -> Vec<String> {
    vec!["**".to_string()]
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Image {
    NixPackages {
        packages: Vec<String>,
    },
    OciBase {
        reference: String,
        /// `sha256:<64 hex>`, or null (`W_OCI_MUTABLE`).
        #[schemars(default)]
        digest: Option<String>,
    },
}

/// Resource requests. Stored wide so that out-of-range values survive
/// decoding and are reported by validation as `E_RESOURCES_RANGE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
#[schemars(default)]
pub struct Resources {
    pub cpu_cores: u64,
    pub memory_mb: u64,
    pub rootfs_size_mb: u64,
}

impl Resources {
    pub const CPU_CORES: std::ops::RangeInclusive<u64> = 1..=64;
    pub const MEMORY_MB: std::ops::RangeInclusive<u64> = 64..=65536;
    pub const ROOTFS_SIZE_MB: std::ops::RangeInclusive<u64> = 64..=1_048_576;
}

impl Default for Resources {
    fn default() -> Self {
        Resources {
            cpu_cores: 1,
            memory_mb: 256,
            rootfs_size_mb: 512,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Dependencies {
    #[default]
    None,
    Python {
        lockfile: String,
        tool: PythonTool,
    },
    Node {
        lockfile: String,
        tool: NodeTool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PythonTool {
    Uv,
    PipTools,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeTool {
    Npm,
    Pnpm,
    Yarn,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
#[schemars(default)]
pub struct Network {
    pub mode: NetworkMode,
    pub ports: Vec<PortForward>,
    pub egress: Egress,
    pub dns: Dns,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    #[default]
    None,
    Bridge,
    Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct PortForward {
    /// 1..=65535.
    pub guest: u16,
    /// 0 means "any free port".
    pub host: u16,
    #[schemars(default)]
    pub proto: Proto,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Proto {
    #[default]
    Tcp,
    Udp,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
#[schemars(default)]
pub struct Egress {
    pub allowlist: Vec<HostPort>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct HostPort {
    /// A DNS name or an IP literal; never a wildcard.
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Dns {
    #[default]
    None,
    System,
    Resolver {
        host: String,
        port: u16,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EnvValue {
    Literal {
        value: String,
    },
    /// A reference to a host-held secret; the value never appears in the IR.
    SecretRef {
        name: String,
        /// How the host applies the secret to a mediated request.
        #[serde(rename = "type")]
        #[schemars(default)]
        auth: SecretAuth,
        /// The header's name, for [`SecretAuth::Header`] only (null otherwise).
        #[schemars(default)]
        header: Option<String>,
        /// Hosts the secret may be sent to; empty: any of the app's egress grants.
        #[schemars(default)]
        hosts: Vec<String>,
    },
}

/// How the host applies a secret to a request it makes for the guest
/// (`mvm.web_fetch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecretAuth {
    /// Only where the guest placed its opaque token (a request header).
    #[default]
    Token,
    /// `Authorization: Bearer <value>` on every request to a bound host.
    Bearer,
    /// `Authorization: Basic base64(<value>)`; the value is `user:password`.
    Basic,
    /// The header named by `header`, set to the value.
    Header,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entrypoint {
    Function {
        name: String,
        language: Language,
        module: String,
        function: String,
        #[schemars(default)]
        format: Format,
        #[schemars(default = "default_working_dir")]
        working_dir: String,
        #[schemars(default)]
        primary: bool,
    },
    Command {
        name: String,
        command: Vec<String>,
        #[schemars(default = "default_working_dir")]
        working_dir: String,
        #[schemars(default)]
        primary: bool,
    },
}

/// Default working directory of an entrypoint: where the source bundle lives in the guest.
pub const DEFAULT_WORKING_DIR: &str = "/app";

/// [`DEFAULT_WORKING_DIR`] as an owned value, for defaulted fields.
pub fn default_working_dir() -> String {
    DEFAULT_WORKING_DIR.to_string()
}

impl Entrypoint {
    pub fn name(&self) -> &str {
        match self {
            Entrypoint::Function { name, .. } | Entrypoint::Command { name, .. } => name,
        }
    }
    pub fn is_primary(&self) -> bool {
        match self {
            Entrypoint::Function { primary, .. } | Entrypoint::Command { primary, .. } => *primary,
        }
    }
    pub fn working_dir(&self) -> &str {
        match self {
            Entrypoint::Function { working_dir, .. } | Entrypoint::Command { working_dir, .. } => {
                working_dir
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    Python,
    Node,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    #[default]
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
#[schemars(default)]
pub struct Hooks {
    pub before_build: Vec<HookCmd>,
    pub before_start: Vec<HookCmd>,
    pub after_start: Vec<HookCmd>,
    pub before_stop: Vec<HookCmd>,
}

/// The four hook phases, in lifecycle order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookPhase {
    BeforeBuild,
    BeforeStart,
    AfterStart,
    BeforeStop,
}

impl HookPhase {
    pub const ALL: [HookPhase; 4] = [
        HookPhase::BeforeBuild,
        HookPhase::BeforeStart,
        HookPhase::AfterStart,
        HookPhase::BeforeStop,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HookPhase::BeforeBuild => "before_build",
            HookPhase::BeforeStart => "before_start",
            HookPhase::AfterStart => "after_start",
            HookPhase::BeforeStop => "before_stop",
        }
    }
}

impl Hooks {
    pub fn phase(&self, phase: HookPhase) -> &Vec<HookCmd> {
        match phase {
            HookPhase::BeforeBuild => &self.before_build,
            HookPhase::BeforeStart => &self.before_start,
            HookPhase::AfterStart => &self.after_start,
            HookPhase::BeforeStop => &self.before_stop,
        }
    }
    pub fn phase_mut(&mut self, phase: HookPhase) -> &mut Vec<HookCmd> {
        match phase {
            HookPhase::BeforeBuild => &mut self.before_build,
            HookPhase::BeforeStart => &mut self.before_start,
            HookPhase::AfterStart => &mut self.after_start,
            HookPhase::BeforeStop => &mut self.before_stop,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HookCmd {
    /// A line for `/bin/sh`, kept exactly as written.
    Shell { line: String },
    /// An argv run without a shell.
    Argv { argv: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct AddonUse {
    pub name: String,
    pub source: AddonSource,
    #[schemars(default)]
    pub hooks: Hooks,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AddonSource {
    Local { path: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Mount {
    pub target: String,
    pub source: MountSource,
    pub mode: MountMode,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MountSource {
    Tmpfs { size_mb: u64 },
    Volume { name: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MountMode {
    Ro,
    Rw,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Volume {
    pub name: String,
    pub size_mb: u64,
    pub persist: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ThreatTier {
    #[default]
    Untrusted,
    Trusted,
}
