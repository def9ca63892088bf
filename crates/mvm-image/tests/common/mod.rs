//! Shared test helpers: real compile outputs made with mvm-compile, and the
//! shared base-root cache. Each test binary uses some of them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `$MVM_CACHE_DIR`, else the default `~/.cache/mvm`: base roots are shared
/// between test runs, as in real use.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MVM_CACHE_DIR") {
        return dir.into();
    }
    let home = std::env::var_os("HOME").expect("HOME is set");
    Path::new(&home).join(".cache/mvm")
}

/// Compiles a one-file Python app with the given image packages, extra
/// app fields (JSON object members) and `app.py` body into `out`.
pub fn compile(work: &Path, out: &Path, packages: &[&str], extra: &str, body: &str) {
    let src = work.join("src-root");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("app.py"), body).unwrap();
    // Present so that workloads declaring Python dependencies compile.
    std::fs::write(src.join("uv.lock"), "version = 1\n").unwrap();
    std::fs::write(
        src.join("pyproject.toml"),
        "[project]\nname = \"hello\"\nversion = \"0\"\n",
    )
    .unwrap();
    let packages = serde_json::to_string(packages).unwrap();
    // A before_start hook unless the caller brings its own hooks.
    let hooks = if extra.contains("\"hooks\"") {
        ""
    } else {
        r#","hooks":{"before_start":[{"kind":"shell","line":"echo starting"}]}"#
    };
    let ir = format!(
        r#"{{"schema_version":"0.1","id":"hello-wl","apps":[{{"name":"hello","source":{{"kind":"local_path","path":".","include":["app.py","uv.lock","pyproject.toml"]}},
        "image":{{"kind":"nix_packages","packages":{packages}}},
        "resources":{{"cpu_cores":1,"memory_mb":256,"rootfs_size_mb":512}},
        "entrypoints":[{{"kind":"function","name":"greet","language":"python","module":"app","function":"greet","primary":true}}]
        {hooks}{extra}}}]}}"#
    );
    let workload = mvm_ir::decode::from_str(&ir).unwrap_or_else(|f| panic!("{f:?}"));
    let req = mvm_compile::CompileRequest {
        workload,
        source_root: src,
        spans: Default::default(),
        findings: vec![],
        origin: "ir:test".into(),
        extra_files: Default::default(),
    };
    let opts = mvm_compile::CompileOptions {
        mtime: 0,
        toolchain_version: "test".into(),
    };
    mvm_compile::compile(&req, out, &opts).unwrap_or_else(|e| panic!("{e}"));
}

/// `mvm_image::build` of `input` with no builder network and no progress
/// output: what most tests need.
pub fn build_plain(
    input: &Path,
    home: &Path,
    cache_dir: &Path,
) -> Result<mvm_image::Built, mvm_image::ImageError> {
    mvm_image::build(&mvm_image::BuildRequest {
        input,
        home,
        cache_dir,
        progress: mvm_image::Progress::Hidden,
        gate_program: None,
        allow_private_egress: &[],
    })
}

/// Image directories in a store (ignoring names/ and staging).
pub fn images_in(home: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(home.join("images"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.len() == 64)
        .collect();
    ids.sort();
    ids
}

/// Entries left in the store's staging directory.
pub fn staging_left(home: &Path) -> usize {
    std::fs::read_dir(home.join("images/.tmp"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// A file read out of an ext4 image with debugfs (no mount needed).
pub fn debugfs_cat(image: &Path, path: &str) -> Vec<u8> {
    let out = std::process::Command::new("debugfs")
        .args(["-R", &format!("cat {path}")])
        .arg(image)
        .output()
        .unwrap();
    out.stdout
}

/// `debugfs stat` output for a path in an ext4 image.
pub fn debugfs_stat(image: &Path, path: &str) -> String {
    let out = std::process::Command::new("debugfs")
        .args(["-R", &format!("stat {path}")])
        .arg(image)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// An exclusive lock on `<cache>/vm-tests.lock`, shared with the other
/// crates' VM tests so that microVM boots run one at a time.
pub struct VmLock(std::fs::File);

pub fn vm_lock(cache: &Path) -> VmLock {
    std::fs::create_dir_all(cache).unwrap();
    let file = std::fs::File::create(cache.join("vm-tests.lock")).unwrap();
    file.lock().unwrap();
    VmLock(file)
}
