//! What admission of a signed plan costs `up` for a realistic image: a
//! 512 MiB rootfs of real bytes (not sparse), an 8 MiB kernel, a 20 MiB
//! initramfs and small lock and launch files.
//!
//! `cargo run -p mvm-plan --release --example admission_bench`
//!
//! - cold: the digest cache is empty (its dir removed before each sample),
//!   so every pinned file is hashed;
//! - cached: the cache answers for all five files;
//! - floor: sha256 of the same five files, read once each in 1 MiB
//!   blocks, with no admission around it: what a cold admission cannot
//!   beat.
//!
//! The files stay in the page cache throughout (they were just written and
//! fit in memory), so "cold" means cold digest cache, not cold disk; the
//! floor is measured the same way, so the ratio compares like with like.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use mvm_plan::{
    BootDigests, ImageDigests, LaunchFiles, Plan, PlanFile, Policy, TrustStores, Window,
};

const MIB: usize = 1 << 20;
const ROOTFS_MIB: usize = 512;
const KERNEL_MIB: usize = 8;
const INITRAMFS_MIB: usize = 20;
const COLD_SAMPLES: usize = 11;
const CACHED_SAMPLES: usize = 50;

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let t = tempfile::tempdir()?;
    let home = t.path().join("home");
    std::fs::create_dir(&home)?;

    let written = Instant::now();
    let files = LaunchFiles {
        image_id: "7".repeat(64),
        rootfs: write_real_bytes(&t.path().join("rootfs.ext4"), ROOTFS_MIB * MIB, 1)?,
        image_lock: Some(write_file(
            &t.path().join("image.lock"),
            br#"{"lock_version":1,"packages":["python3"]}"#,
        )?),
        launch_json: write_file(&t.path().join("launch.json"), launch_json().as_bytes())?,
        launch_json_sha256: None,
        kernel: write_real_bytes(&t.path().join("vmlinuz"), KERNEL_MIB * MIB, 2)?,
        initramfs: write_real_bytes(&t.path().join("initramfs.cpio"), INITRAMFS_MIB * MIB, 3)?,
    };
    let all: Vec<&Path> = vec![
        &files.rootfs,
        files.image_lock.as_deref().expect("set above"),
        &files.launch_json,
        &files.kernel,
        &files.initramfs,
    ];
    let total_bytes: u64 = all
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()))
        .sum::<Result<u64, _>>()?;
    println!(
        "files: rootfs {ROOTFS_MIB} MiB, kernel {KERNEL_MIB} MiB, initramfs {INITRAMFS_MIB} MiB, lock + launch.json; {:.1} MiB in all (written in {} ms)",
        total_bytes as f64 / MIB as f64,
        written.elapsed().as_millis()
    );

    let launch = mvm_launch::parse(launch_json().as_bytes())?;
    let ring = mvm_keys::KeyRing::new(&t.path().join("keys"))?;
    ring.generate("operator")?;
    let signer = ring.signer("operator")?;
    let h = |p: &Path| sha256_file(p);
    let plan = Plan::new(
        &launch,
        ImageDigests {
            id: files.image_id.clone(),
            rootfs_sha256: h(&files.rootfs)?,
            image_lock_sha256: h(all[1])?,
            launch_json_sha256: h(&files.launch_json)?,
        },
        BootDigests {
            kernel_sha256: h(&files.kernel)?,
            initramfs_sha256: h(&files.initramfs)?,
        },
        time::OffsetDateTime::now_utc(),
        Window::default(),
        None,
    );
    let plan_path = t.path().join("plan.json");
    let bare = PlanFile::parse(&plan_path, &serde_json::to_vec(&plan)?)?;
    let signed_bytes = bare.sign(&signer)?;
    std::fs::write(&plan_path, &signed_bytes)?;
    let plan_file = PlanFile::read(&plan_path)?;
    let policy = Policy {
        require_signed: true,
        trusted_keys: vec![ring.public("operator")?],
        ..Policy::default()
    };

    // As `up` does it: the stores opened, then every check, per launch.
    let digests_dir = home.join("trust").join("digests");
    let admit_once = |want_cached: usize| -> Result<Duration, Error> {
        let started = Instant::now();
        let stores = TrustStores::open(&home)?;
        let admitted = mvm_plan::admit(
            &policy,
            Some(&plan_file),
            &launch,
            &files,
            &stores,
            time::OffsetDateTime::now_utc(),
        )
        .map_err(|r| format!("admission refused the bench's own plan: {r}"))?;
        let took = started.elapsed();
        // A sample that did not take the path it is filed under is no sample.
        if (admitted.digests_checked, admitted.digests_cached) != (5, want_cached) {
            return Err(format!(
                "expected 5 digests, {want_cached} from the cache; got {} and {}",
                admitted.digests_checked, admitted.digests_cached
            )
            .into());
        }
        Ok(took)
    };

    // Cold admissions and the floor alternate, so drift on a shared
    // machine hits both alike.
    let mut cold = Vec::new();
    let mut floor = Vec::new();
    for _ in 0..COLD_SAMPLES {
        match std::fs::remove_dir_all(&digests_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("emptying {}: {e}", digests_dir.display()).into()),
        }
        cold.push(admit_once(0)?);
        let started = Instant::now();
        for p in &all {
            std::hint::black_box(sha256_file(p)?);
        }
        floor.push(started.elapsed());
    }
    let mut cached = Vec::new();
    for _ in 0..CACHED_SAMPLES {
        cached.push(admit_once(5)?);
    }
    // Hashing alone, from one buffer already in memory: the part of the
    // floor that is sha256 rather than reading.
    let buf = real_bytes(MIB, 9);
    let mut in_memory = Vec::new();
    let blocks = (total_bytes as usize).div_ceil(MIB);
    for _ in 0..COLD_SAMPLES {
        let started = Instant::now();
        let mut hasher = Sha256::new();
        for _ in 0..blocks {
            hasher.update(&buf);
        }
        std::hint::black_box(hasher.finalize());
        in_memory.push(started.elapsed());
    }

    let cold_p50 = p50(&mut cold);
    let cached_p50 = p50(&mut cached);
    let floor_p50 = p50(&mut floor);
    let mem_p50 = p50(&mut in_memory);
    let mib = total_bytes as f64 / MIB as f64;
    println!("admission of a signed plan pinning 5 files ({mib:.1} MiB):");
    println!(
        "  cold   (empty digest cache, {COLD_SAMPLES} samples): p50 {:>9.3} ms  min {:>9.3} ms  max {:>9.3} ms  ({:.0} MiB/s)",
        ms(cold_p50),
        ms(cold[0]),
        ms(*cold.last().unwrap()),
        mib / cold_p50.as_secs_f64()
    );
    println!(
        "  cached (all 5 hits, {CACHED_SAMPLES} samples):          p50 {:>9.3} ms  min {:>9.3} ms  max {:>9.3} ms",
        ms(cached_p50),
        ms(cached[0]),
        ms(*cached.last().unwrap())
    );
    println!(
        "  floor: sha256 of the same files read once ({COLD_SAMPLES} samples): p50 {:>9.3} ms  ({:.0} MiB/s)",
        ms(floor_p50),
        mib / floor_p50.as_secs_f64()
    );
    println!(
        "  of which hashing from memory ({COLD_SAMPLES} samples): p50 {:>9.3} ms  ({:.0} MiB/s)",
        ms(mem_p50),
        blocks as f64 / mem_p50.as_secs_f64()
    );
    println!(
        "  cold / floor: {:.3}x   cold / cached: {:.0}x",
        cold_p50.as_secs_f64() / floor_p50.as_secs_f64(),
        cold_p50.as_secs_f64() / cached_p50.as_secs_f64()
    );
    Ok(())
}

/// The launch.json of mvm-plan's test fixture (`plan::tests::launch`):
/// one Python function, two secret references, no network.
fn launch_json() -> String {
    let phases = ["before_build", "before_start", "after_start", "before_stop"];
    let hooks: serde_json::Map<_, _> = phases
        .iter()
        .map(|p| (p.to_string(), serde_json::json!([])))
        .collect();
    let hook_scripts: serde_json::Map<_, _> = phases
        .iter()
        .map(|p| (p.to_string(), serde_json::json!(format!("hooks/{p}.sh"))))
        .collect();
    serde_json::json!({
        "launch_version": mvm_launch::LAUNCH_VERSION, "workload_id": "hello", "app_name": "hello",
        "ir_hash": "a".repeat(64), "schema_version": "0.1", "toolchain": {"mvmctl": "0.1.0"},
        "image": {"kind": "nix_packages", "packages": ["python3"]},
        "dependencies": {"kind": "none"},
        "resources": {"cpu_cores": 2, "memory_mib": 256, "rootfs_size_mib": 512},
        "network": {"mode": "none", "ports": [], "egress": {"allowlist": []}, "dns": {"kind": "none"}},
        "env": {"MODEL": {"kind": "literal", "value": "m"},
                "API_KEY": {"kind": "secret_ref", "name": "api-key", "type": "token", "header": null, "hosts": []},
                "API_KEY2": {"kind": "secret_ref", "name": "api-key", "type": "token", "header": null, "hosts": []}},
        "entrypoints": [
            {"kind": "function", "name": "greet", "language": "python", "module": "app",
             "function": "greet", "format": "json", "working_dir": "/app", "primary": true}
        ],
        "primary_entrypoint": "greet",
        "hooks": hooks,
        "hook_scripts": hook_scripts,
        "mounts": [], "volumes": [], "threat_tier": "untrusted",
        "source": {"files": 1, "tree_hash": "b".repeat(64)},
    })
    .to_string()
}

/// `len` bytes from a xorshift stream: every block written, none sparse,
/// none repeating (so no filesystem can dedupe or compress it away).
fn real_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn write_real_bytes(path: &Path, len: usize, seed: u64) -> Result<PathBuf, Error> {
    let mut f = std::fs::File::create(path)?;
    let mut left = len;
    let mut block = 0u64;
    while left > 0 {
        let n = left.min(MIB);
        f.write_all(&real_bytes(n, seed << 32 | block))?;
        left -= n;
        block += 1;
    }
    f.sync_all()?;
    let blocks = std::os::unix::fs::MetadataExt::blocks(&f.metadata()?);
    // st_blocks counts 512-byte units: a sparse file would have fewer.
    if (blocks * 512) < len as u64 {
        return Err(format!("{} came out sparse", path.display()).into());
    }
    Ok(path.to_path_buf())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<PathBuf, Error> {
    std::fs::write(path, bytes)?;
    Ok(path.to_path_buf())
}

/// Hex sha256 of `path`, read in 1 MiB blocks as the digest cache reads.
fn sha256_file(path: &Path) -> Result<String, Error> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; MIB];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Sorts `v` and returns its median.
fn p50(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
