//! The codes table in `docs/ir.md` must be the registry's table.

use std::path::PathBuf;

const BEGIN: &str = "<!-- codes:begin (generated from Code::ALL) -->\n";
const END: &str = "<!-- codes:end -->";

#[test]
fn docs_table_matches_registry() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/ir.md");
    let doc = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let (start, end) = match (doc.find(BEGIN), doc.find(END)) {
        (Some(s), Some(e)) if s < e => (s + BEGIN.len(), e),
        _ => panic!(
            "{} lacks the {BEGIN:?} … {END:?} markers around the codes table",
            path.display()
        ),
    };
    let table = mvm_ir::codes::markdown_table();
    if std::env::var_os("MVM_BLESS").is_some() {
        let updated = format!("{}{table}{}", &doc[..start], &doc[end..]);
        std::fs::write(&path, updated)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    assert!(
        doc[start..end] == table,
        "the codes table in {} differs from Code::ALL; regenerate it with `MVM_BLESS=1 cargo test -p mvm-ir --test docs_codes`",
        path.display()
    );
}
