//! Parse + lower + validate of a 2,000-line declaration file (one app and a
//! lot of ordinary module code around it), Python and TypeScript.
//! Target: ≤ 5 ms each.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};

const LINES: usize = 2000;

fn python_source() -> String {
    let mut s = String::from(
        "import mvm\n\nmvm.workload(id=\"bench\")\n\n@mvm.app(\n    name=\"bench\",\n    source=mvm.local_path(\".\", include=[\"src/**\", \"uv.lock\"]),\n    image=mvm.python_image(python=\"3.12\", packages=[\"uv\"]),\n    resources=mvm.resources(cpu_cores=2, memory_mb=1024),\n    dependencies=mvm.python_deps(),\n    network=mvm.network(mode=\"deny\", allow_https=[\"api.example.com\", \"pypi.org\"]),\n    env={\"MODEL\": \"m\", \"API_KEY\": mvm.secret(\"api-key\")},\n    before_build=mvm.hook([\"uv\", \"sync\", \"--frozen\"]),\n)\ndef run(prompt: str) -> str:\n    return prompt\n\n",
    );
    let mut i = 0;
    while s.lines().count() < LINES {
        s.push_str(&format!(
            "def helper_{i}(values: list[int]) -> int:\n    total = 0\n    for v in values:\n        total += v * {i} if v % 2 else v - {i}\n    return total\n\n"
        ));
        i += 1;
    }
    s
}

fn typescript_source() -> String {
    let mut s = String::from(
        "import * as mvm from \"mvm-sdk\";\n\nmvm.workload({ id: \"bench\" });\n\nexport const run = mvm.app({\n  name: \"bench\",\n  source: mvm.localPath(\".\", { include: [\"src/**\", \"package-lock.json\"] }),\n  image: mvm.nodeImage({ node: \"22\" }),\n  resources: mvm.resources({ cpuCores: 2, memoryMb: 1024 }),\n  dependencies: mvm.nodeDeps(),\n  network: mvm.network({ mode: \"deny\", allowHttps: [\"api.example.com\", \"registry.npmjs.org\"] }),\n  env: { MODEL: \"m\", API_KEY: mvm.secret(\"api-key\") },\n  beforeBuild: mvm.hook([\"npm\", \"ci\"]),\n})((prompt: string): string => prompt);\n\n",
    );
    let mut i = 0;
    while s.lines().count() < LINES {
        s.push_str(&format!(
            "export function helper{i}(values: number[]): number {{\n  let total = 0;\n  for (const v of values) {{\n    total += v % 2 ? v * {i} : v - {i};\n  }}\n  return total;\n}}\n\n"
        ));
        i += 1;
    }
    s
}

fn bench(c: &mut Criterion) {
    for (file, source) in [("app.py", python_source()), ("app.ts", typescript_source())] {
        let path = Path::new(file);
        // Fail loudly if the generated file stopped being a valid declaration.
        assert!(matches!(
            mvm_decl::compile_declaration(path, &source, path),
            Ok(mvm_decl::Outcome::Declared(_))
        ));
        c.bench_function(
            &format!("compile_declaration {file} ({LINES} lines)"),
            |b| b.iter(|| mvm_decl::compile_declaration(black_box(path), black_box(&source), path)),
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
