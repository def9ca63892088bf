//! `launch.json`: the one contract between the front half of mvm (compile,
//! which reads the IR) and the back half (image builder, runtime, guest
//! agent, which never do). `mvm-compile` writes it; everything else reads
//! it with [`parse`], which is strict: unknown fields are refused, the
//! version must be [`LAUNCH_VERSION`], and [`Launch::validate`] repeats the
//! ranges and name rules the IR validator applied, so a hand-edited or
//! foreign file is refused where it is read, with the JSON path at fault.
//!
//! Units are in the names (`memory_mib`): the IR's `memory_mb` is MiB, and
//! the contract says so.

mod error;
pub mod net;
pub mod rules;
mod types;
mod validate;

pub use error::LaunchError;
pub use types::*;

/// The file's name, in a compile output, an image and the guest (`/etc/mvm/`).
pub const FILE_NAME: &str = "launch.json";

/// Bumped whenever the shape changes; a reader accepts exactly this one.
/// 2: units in names (`memory_mib`, `rootfs_size_mib`, `size_mib`).
pub const LAUNCH_VERSION: u32 = 3;

/// Readers refuse a bigger file before parsing it; real ones are a few KiB.
pub const MAX_BYTES: u64 = 16 << 20;

/// Parse and validate `launch.json` bytes.
pub fn parse(bytes: &[u8]) -> Result<Launch, LaunchError> {
    if bytes.len() as u64 > MAX_BYTES {
        return Err(LaunchError::invalid(
            "",
            format!(
                "{} bytes is more than the {MAX_BYTES} a launch.json may have",
                bytes.len()
            ),
        ));
    }
    // The version first, alone: a file from another mvm differs in shape,
    // and "written by another version" is the useful message, not the
    // first unknown field.
    #[derive(serde::Deserialize)]
    struct Probe {
        launch_version: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_slice(bytes).map_err(|e| LaunchError::Json {
        path: String::new(),
        message: e.to_string(),
    })?;
    match probe.launch_version {
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(LAUNCH_VERSION.into()) => {}
        Some(serde_json::Value::Number(n)) => {
            return Err(LaunchError::Version {
                found: n.to_string(),
            });
        }
        Some(other) => {
            return Err(LaunchError::Version {
                found: other.to_string(),
            });
        }
        None => {
            return Err(LaunchError::invalid(
                "launch_version",
                "missing: this is not a launch.json written by `mvmctl compile`",
            ));
        }
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let launch: Launch = serde_path_to_error::deserialize(de).map_err(|e| LaunchError::Json {
        path: e.path().to_string(),
        message: e.into_inner().to_string(),
    })?;
    launch.validate()?;
    Ok(launch)
}

/// Read and [`parse`] a launch.json file, refusing one over [`MAX_BYTES`]
/// before reading it all. Callers that must not follow links open the file
/// themselves and use [`parse`].
pub fn read(path: &std::path::Path) -> Result<Launch, LaunchError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(LaunchError::Io)?;
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(LaunchError::Io)?;
    parse(&bytes)
}

impl Launch {
    /// The entrypoint `primary_entrypoint` names (validated to exist).
    pub fn primary(&self) -> Option<&Entrypoint> {
        self.entrypoint(&self.primary_entrypoint)
    }

    pub fn entrypoint(&self, name: &str) -> Option<&Entrypoint> {
        self.entrypoints.iter().find(|e| e.name() == name)
    }

    /// A phase's merged hook commands (addons' first, then the app's).
    pub fn hooks(&self, phase: HookPhase) -> &[HookCmd] {
        self.hooks
            .get(&phase)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Canonical-enough JSON for tests and tools; `mvm-compile` writes the
    /// file itself with the IR's canonical JSON writer.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("launch types serialize to JSON")
    }
}
