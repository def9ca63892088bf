//! The shape of launch.json. It mirrors the parts of the IR the back half
//! acts on, with every field required (compile writes the full shape) and
//! enums typed, so a reader matches on variants, not strings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Launch {
    pub launch_version: u32,
    pub workload_id: String,
    pub app_name: String,
    /// sha256 (hex) of the compile output's `workload.json`.
    pub ir_hash: String,
    /// The IR schema version the workload was written in.
    pub schema_version: String,
    pub toolchain: Toolchain,
    pub image: Image,
    pub dependencies: Dependencies,
    pub resources: Resources,
    pub network: Network,
    pub env: BTreeMap<String, EnvValue>,
    pub entrypoints: Vec<Entrypoint>,
    pub primary_entrypoint: String,
    /// Merged hook commands per phase: addons' first, in attachment order.
    pub hooks: BTreeMap<HookPhase, Vec<HookCmd>>,
    /// Phase → script in the compile output; always [`HookPhase::script`].
    pub hook_scripts: BTreeMap<HookPhase, String>,
    pub mounts: Vec<Mount>,
    pub volumes: Vec<Volume>,
    pub threat_tier: ThreatTier,
    pub source: SourceInfo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Toolchain {
    /// The mvmctl version that compiled it.
    pub mvmctl: String,
}

/// What `src/` of the compile output holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceInfo {
    pub files: u64,
    pub tree_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Image {
    NixPackages {
        packages: Vec<String>,
    },
    OciBase {
        reference: String,
        #[serde(default)]
        digest: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Dependencies {
    None,
    Python { lockfile: String, tool: PythonTool },
    Node { lockfile: String, tool: NodeTool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PythonTool {
    Uv,
    PipTools,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeTool {
    Npm,
    Pnpm,
    Yarn,
}

impl Dependencies {
    /// The declared tool's name as the IR spells it (`uv`, `pip_tools`,
    /// `npm`, ...); empty for none.
    pub fn tool_name(&self) -> &'static str {
        match self {
            Dependencies::None => "",
            Dependencies::Python {
                tool: PythonTool::Uv,
                ..
            } => "uv",
            Dependencies::Python {
                tool: PythonTool::PipTools,
                ..
            } => "pip_tools",
            Dependencies::Node {
                tool: NodeTool::Npm,
                ..
            } => "npm",
            Dependencies::Node {
                tool: NodeTool::Pnpm,
                ..
            } => "pnpm",
            Dependencies::Node {
                tool: NodeTool::Yarn,
                ..
            } => "yarn",
        }
    }

    /// The lockfile, relative to the source bundle.
    pub fn lockfile(&self) -> Option<&str> {
        match self {
            Dependencies::None => None,
            Dependencies::Python { lockfile, .. } | Dependencies::Node { lockfile, .. } => {
                Some(lockfile)
            }
        }
    }
}

/// What the VM is given. MiB throughout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub cpu_cores: u32,
    pub memory_mib: u32,
    /// The writable scratch disk's size.
    pub rootfs_size_mib: u64,
}

impl Resources {
    /// The IR's ranges (`mvm_ir::Resources`), repeated so a reader that
    /// never sees the IR still refuses what the validator would have; a
    /// test in mvm-compile keeps the two equal.
    pub const CPU_CORES: std::ops::RangeInclusive<u32> = 1..=64;
    pub const MEMORY_MIB: std::ops::RangeInclusive<u32> = 64..=65536;
    pub const ROOTFS_SIZE_MIB: std::ops::RangeInclusive<u64> = 64..=1_048_576;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub mode: NetworkMode,
    pub ports: Vec<PortForward>,
    pub egress: Egress,
    pub dns: Dns,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    None,
    Bridge,
    Host,
}

impl NetworkMode {
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkMode::None => "none",
            NetworkMode::Bridge => "bridge",
            NetworkMode::Host => "host",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortForward {
    pub guest: u16,
    pub host: u16,
    pub proto: Proto,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Proto {
    Tcp,
    Udp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Egress {
    pub allowlist: Vec<HostPort>,
}

impl Egress {
    /// An allowlist of `(host, port)` grants, as written.
    pub fn of(grants: &[(&str, u16)]) -> Egress {
        Egress {
            allowlist: grants
                .iter()
                .map(|(host, port)| HostPort {
                    host: host.to_string(),
                    port: *port,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Dns {
    None,
    System,
    Resolver { host: String, port: u16 },
}

/// An environment value: a literal, or a secret by name (never its value)
/// with where it may be sent and how the host applies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum EnvValue {
    Literal {
        value: String,
    },
    SecretRef {
        name: String,
        #[serde(rename = "type")]
        auth: SecretAuth,
        /// The header's name, for [`SecretAuth::Header`] only.
        header: Option<String>,
        /// Hosts it may be sent to; empty: any egress grant.
        hosts: Vec<String>,
    },
}

/// How the host applies a secret to a request it makes for the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretAuth {
    /// Only where the guest placed its token.
    Token,
    /// `Authorization: Bearer <value>`.
    Bearer,
    /// `Authorization: Basic base64(<value>)`.
    Basic,
    /// The named header, set to the value.
    Header,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Entrypoint {
    Function {
        name: String,
        language: Language,
        /// Dotted module path, resolved from `working_dir`.
        module: String,
        function: String,
        format: Format,
        working_dir: String,
        primary: bool,
    },
    Command {
        name: String,
        command: Vec<String>,
        working_dir: String,
        primary: bool,
    },
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    Python,
    Node,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::Node => "node",
        }
    }
}

/// How a function's arguments and result travel; JSON is the only one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Json,
}

/// The hook phases, and only those: a phase is a map key here and a file
/// name in the output, so an unknown one is refused by the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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

    /// Where compile writes this phase's script, relative to the output;
    /// the only place a reader looks for it.
    pub fn script(self) -> String {
        format!("hooks/{}.sh", self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum HookCmd {
    Shell { line: String },
    Argv { argv: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    pub target: String,
    pub source: MountSource,
    pub mode: MountMode,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum MountSource {
    Tmpfs { size_mib: u64 },
    Volume { name: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MountMode {
    Ro,
    Rw,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    pub name: String,
    pub size_mib: u64,
    pub persist: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreatTier {
    Untrusted,
    Trusted,
}
