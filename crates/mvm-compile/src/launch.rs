//! `launch.json`: everything the image builder and the runtime need to
//! start the app, derived from the IR. Written as canonical JSON.
//!
//! Secrets appear only as references by name (the IR never holds values).
//! `hooks` holds each phase's merged list (addon hooks first, in attachment
//! order, then the app's); `hook_scripts` names the generated scripts.

use mvm_ir::canonical::canonical_json;
use mvm_ir::{App, HookPhase, Workload};
use serde_json::{Map, Value, json};

use crate::hooks;

/// Bumped when the shape of `launch.json` changes incompatibly.
pub const LAUNCH_VERSION: u32 = 1;

pub struct Source<'a> {
    pub files: usize,
    pub tree_hash: &'a str,
}

pub fn launch_json(
    workload: &Workload,
    app: &App,
    ir_hash: &str,
    toolchain: &str,
    source: &Source<'_>,
) -> String {
    let mut merged = Map::new();
    let mut scripts = Map::new();
    for phase in HookPhase::ALL {
        let cmds: Vec<Value> = hooks::merged(app, phase)
            .iter()
            .map(|h| to_value(h.cmd))
            .collect();
        merged.insert(phase.as_str().to_string(), Value::Array(cmds));
        scripts.insert(
            phase.as_str().to_string(),
            Value::String(script_path(phase)),
        );
    }
    let primary = app
        .entrypoints
        .iter()
        .find(|e| e.is_primary())
        .map(|e| e.name())
        .unwrap_or_default();
    let value = json!({
        "launch_version": LAUNCH_VERSION,
        "workload_id": workload.id,
        "app_name": app.name,
        "ir_hash": ir_hash,
        "schema_version": workload.schema_version,
        "toolchain": { "mvmctl": toolchain },
        "image": to_value(&app.image),
        "dependencies": to_value(&app.dependencies),
        "resources": to_value(&app.resources),
        "network": to_value(&app.network),
        "env": to_value(&app.env),
        "entrypoints": to_value(&app.entrypoints),
        "primary_entrypoint": primary,
        "hooks": merged,
        "hook_scripts": scripts,
        "mounts": to_value(&app.mounts),
        "volumes": to_value(&workload.volumes),
        "threat_tier": to_value(&app.threat_tier),
        "source": { "files": source.files, "tree_hash": source.tree_hash },
    });
    canonical_json(&value)
}

/// Path of a phase's script inside the compile output.
pub fn script_path(phase: HookPhase) -> String {
    format!("hooks/{}.sh", phase.as_str())
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    // IR types hold only strings, integers, bools, sequences and string-keyed maps.
    serde_json::to_value(v).expect("IR values serialize to JSON")
}
