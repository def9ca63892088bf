//! The compile benchmarks' input, shared by `compile_1000` and `perf`:
//! `workload.json` plus 1,000 small files.

use std::path::Path;

const FILES: usize = 1000;

/// `workload.json` plus 1,000 files of ~100 bytes spread over 20 directories.
pub fn project(dir: &Path) {
    for i in 0..FILES {
        let sub = dir.join(format!("pkg{:02}", i % 20));
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::write(
            sub.join(format!("mod{i:04}.py")),
            format!("def f{i}(x):\n    return x + {i}\n").repeat(3),
        )
        .unwrap();
    }
    let ir = r#"{
      "schema_version": "0.1", "id": "bench",
      "apps": [{
        "name": "bench",
        "source": { "kind": "local_path", "path": ".", "include": ["pkg*/**"] },
        "image": { "kind": "nix_packages", "packages": ["python312"] },
        "resources": {},
        "entrypoints": [{ "kind": "function", "name": "f0", "language": "python",
                          "module": "pkg00.mod0000", "function": "f0", "format": "json", "primary": true }]
      }]
    }"#;
    std::fs::write(dir.join("workload.json"), ir).unwrap();
}
