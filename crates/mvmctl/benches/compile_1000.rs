//! The whole `mvmctl compile` process on an IR whose source tree holds
//! 1,000 small files, to a directory and to a `.tgz`. Target: ≤ 200 ms each
//! (release build; `cargo bench -p mvmctl --bench compile_1000`).

use std::path::Path;
use std::process::Command;

use criterion::{Criterion, criterion_group, criterion_main};

#[path = "common/project_1000.rs"]
mod project_1000;
use project_1000::project;

fn compile(ir: &Path, out: &Path) {
    let status = Command::new(env!("CARGO_BIN_EXE_mvmctl"))
        .arg("compile")
        .arg(ir)
        .arg("--out")
        .arg(out)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

fn bench(c: &mut Criterion) {
    let src = tempfile::tempdir().unwrap();
    project(src.path());
    let ir = src.path().join("workload.json");
    let out = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("compile_1000_files");
    group.sample_size(20);
    // Each run replaces the previous output, as a user recompiling would.
    group.bench_function("directory", |b| {
        b.iter(|| compile(&ir, &out.path().join("dir")))
    });
    group.bench_function("tgz", |b| {
        b.iter(|| compile(&ir, &out.path().join("out.tgz")))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
