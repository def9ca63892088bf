//! `docs/workload.schema.json` must match the schema generated from the types.

use std::path::PathBuf;

#[test]
fn checked_in_schema_is_current() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/workload.schema.json");
    let generated = mvm_ir::schema::json_schema_text();
    if std::env::var_os("MVM_BLESS").is_some() {
        std::fs::write(&path, &generated)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "{} is stale or missing; regenerate it with `MVM_BLESS=1 cargo test -p mvm-ir --test schema_file`",
        path.display()
    );
}
