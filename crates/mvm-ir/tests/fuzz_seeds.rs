//! The fuzz seeds are real IR: they must decode and round-trip, or the fuzzer
//! would start from inputs the reader rejects.

use std::path::PathBuf;

#[test]
fn fuzz_seeds_decode_and_round_trip() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/ir_decode");
    let mut seen = 0;
    for entry in
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
    {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let w = mvm_ir::decode::from_str(&text)
            .unwrap_or_else(|f| panic!("{}: {f:#?}", path.display()));
        let canonical = mvm_ir::to_canonical_string(&w);
        let again = mvm_ir::decode::from_str(&canonical).unwrap();
        assert_eq!(
            mvm_ir::to_canonical_string(&again),
            canonical,
            "{}",
            path.display()
        );
        seen += 1;
    }
    assert!(seen >= 2, "expected the seed files in {}", dir.display());
}
