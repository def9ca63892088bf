//! What the API keeps about a sandbox beyond the instance itself (which
//! `mvm-runtime` owns): the template it was created from, the env added to
//! its commands and the caller's metadata. One owner-only file per
//! sandbox, `$MVM_HOME/api/sandboxes/<id>.json`, removed with it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use mvm_runtime::InstanceName;
use serde::{Deserialize, Serialize};

use crate::ApiError;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    pub template: String,
    #[serde(default)]
    pub envs: BTreeMap<String, String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The instance's own `created_unix_ms`: a record left by an instance
    /// that went away without the API (a TTL, `mvmctl down`) does not
    /// apply to a later one of the same name.
    #[serde(default)]
    pub created_unix_ms: u64,
}

fn dir(home: &Path) -> PathBuf {
    home.join("api").join("sandboxes")
}

fn path(home: &Path, id: &InstanceName) -> PathBuf {
    dir(home).join(format!("{id}.json"))
}

/// Saves `record` for the instance `id` as it now exists.
pub fn save(home: &Path, id: &InstanceName, record: &Record) -> Result<(), ApiError> {
    let created = mvm_runtime::state::InstanceState::load(
        &mvm_runtime::home::InstanceDir::new(home, id.clone()).state_json(),
    )
    .map(|st| st.created_unix_ms)?;
    let record = &Record {
        created_unix_ms: created,
        ..record.clone()
    };
    let d = dir(home);
    let fail = |e: std::io::Error| {
        ApiError::internal(format!(
            "saving the record of `{id}` in {}: {e}",
            d.display()
        ))
    };
    mvm_runtime::private::create_dir_all(&d).map_err(fail)?;
    let staged = d.join(format!(".{id}.json.{:016x}", rand::random::<u64>()));
    let mut f = mvm_runtime::private::create_file(&staged).map_err(fail)?;
    f.write_all(&serde_json::to_vec(record).unwrap_or_default())
        .map_err(fail)?;
    std::fs::rename(&staged, path(home, id)).map_err(fail)
}

/// The record of the instance `id` created at `created_unix_ms`, or an
/// empty one for an instance the API did not create (`mvmctl up`), whose
/// record is unreadable, or whose record belongs to an earlier instance.
pub fn load(home: &Path, id: &InstanceName, created_unix_ms: u64) -> Record {
    std::fs::read(path(home, id))
        .ok()
        .and_then(|b| serde_json::from_slice::<Record>(&b).ok())
        .filter(|r| r.created_unix_ms == created_unix_ms)
        .unwrap_or_default()
}

pub fn remove(home: &Path, id: &InstanceName) {
    let _ = std::fs::remove_file(path(home, id));
}
