//! Measures the hot paths; run with `--nocapture` to see the numbers.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::time::Instant;

use mvm_snapshot::{SealKey, Staging};

#[test]
fn copy_out_sparse_and_verify_dense_are_fast() {
    let t = tempfile::tempdir().unwrap();
    let key = SealKey::load_or_create(&t.path().join("key")).unwrap();
    let mut st = Staging::new(&t.path().join("snaps"), "timing").unwrap();

    // 1 GiB logical, 5 MiB of data spread over 20 extents.
    let src = t.path().join("scratch.img");
    let f = File::create(&src).unwrap();
    f.set_len(1 << 30).unwrap();
    let chunk: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8 + 1).collect();
    for i in 0..20u64 {
        f.write_all_at(&chunk, i * 50 * (1 << 20) + 4096 * i)
            .unwrap();
    }
    drop(f);
    st.copy_in(&src, "scratch.img").unwrap();

    // 68 MiB dense.
    let dense: Vec<u8> = (0..68u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    fs::write(st.file_path("vm.state"), &dense).unwrap();
    drop(dense);
    st.add("vm.state").unwrap();
    let snap = st
        .commit(&key, "template", BTreeMap::new(), serde_json::Value::Null)
        .unwrap();

    let out = t.path().join("out.img");
    let t0 = Instant::now();
    snap.copy_out("scratch.img", &out).unwrap();
    let copy = t0.elapsed();
    let alloc = fs::metadata(&out).unwrap().blocks() * 512;

    let t0 = Instant::now();
    snap.verify("vm.state").unwrap();
    let verify = t0.elapsed();

    let t0 = Instant::now();
    snap.verify("scratch.img").unwrap();
    let verify_sparse = t0.elapsed();

    println!(
        "copy_out 1 GiB sparse / 5 MiB data: {copy:?} ({alloc} bytes allocated); \
         verify 68 MiB dense: {verify:?}; verify 1 GiB sparse: {verify_sparse:?}"
    );
    assert!(alloc <= 6 << 20, "copy is not sparse: {alloc} bytes");
    // Generous bound so a loaded CI machine does not flake; the printed figure is the measure.
    assert!(copy.as_millis() < 2000, "copy_out took {copy:?}");
}
