//! Fetches the real Debian cloud kernel through apt (into the shared test
//! cache: MVM_CACHE_DIR or ~/.cache/mvm) and checks what lands in the cache.

use std::process::Command;

use mvm_guest::{
    GUEST_MODULES, Progress, default_cache_dir, ensure_assets, ensure_kernel, update_kernel,
};
use sha2::{Digest, Sha256};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn kernel_is_fetched_extracted_and_cached() {
    let cache = default_cache_dir().unwrap();
    // Asks apt for the current package, downloading it if it is new.
    let kernel = update_kernel(&cache, Progress::Hidden).unwrap();
    let manifest = &kernel.manifest;
    assert!(manifest.package.starts_with("linux-image-"), "{manifest:?}");
    assert!(manifest.release.ends_with("-cloud-amd64"), "{manifest:?}");

    let vmlinux = std::fs::read(kernel.vmlinux()).unwrap();
    assert_eq!(&vmlinux[..4], b"\x7fELF");
    assert_eq!(hex(&Sha256::digest(&vmlinux)), manifest.vmlinux_sha256);

    // Every wanted module that is not built in is loaded after its dependencies.
    let position = |name: &str| manifest.load_order.iter().position(|m| m == name);
    for wanted in ["virtio_mmio", "virtio_blk", "virtio_console", "overlay"] {
        assert!(
            position(wanted).is_some(),
            "{wanted} missing from {:?}",
            manifest.load_order
        );
    }
    assert!(position("virtio").unwrap() < position("virtio_mmio").unwrap());
    assert!(position("virtio_ring").unwrap() < position("virtio_blk").unwrap());
    // The NIC driver loads only with a network, after what it needs.
    assert!(
        position("virtio_net").is_none(),
        "{:?}",
        manifest.load_order
    );
    assert_eq!(
        manifest.network_load_order.last().map(String::as_str),
        Some("virtio_net"),
        "{:?}",
        manifest.network_load_order
    );
    for module in manifest
        .load_order
        .iter()
        .chain(&manifest.network_load_order)
    {
        let ko = std::fs::read(kernel.module(module)).unwrap();
        assert_eq!(&ko[..4], b"\x7fELF", "{module} is not a plain .ko");
    }
    assert_eq!(
        manifest.wanted_modules[..GUEST_MODULES.len()],
        *GUEST_MODULES
    );

    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(kernel.dir.join("kernel.json")).unwrap()).unwrap();
    assert_eq!(record["deb_sha256"].as_str().unwrap().len(), 64);

    // Later calls take the recorded current kernel: nothing is rewritten.
    let modified = std::fs::metadata(kernel.vmlinux())
        .unwrap()
        .modified()
        .unwrap();
    let again = ensure_kernel(&cache, Progress::Hidden).unwrap();
    assert_eq!(again.dir, kernel.dir);
    assert_eq!(
        std::fs::metadata(again.vmlinux())
            .unwrap()
            .modified()
            .unwrap(),
        modified
    );
    let current = std::fs::read_to_string(cache.join("kernel/current")).unwrap();
    assert_eq!(cache.join("kernel").join(current.trim()), kernel.dir);
}

#[test]
fn agent_initramfs_follows_the_boot_contract() {
    let cache = default_cache_dir().unwrap();
    let assets = ensure_assets(&cache, Progress::Hidden).unwrap();
    let listing = Command::new("cpio")
        .args(["-t", "--quiet", "-F"])
        .arg(&assets.initrd)
        .output()
        .expect("cpio is installed");
    assert!(listing.status.success(), "{listing:?}");
    let names: Vec<String> = String::from_utf8(listing.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    for required in [
        "init",
        "dev/console",
        "lib/modules/load-order",
        "lib/modules/virtio_mmio.ko",
        "lib/modules/virtio_console.ko",
        "usr/lib/mvm/runners",
    ] {
        assert!(
            names.iter().any(|n| n == required),
            "{required} not in {names:?}"
        );
    }
    for runner in mvm_guest::runner_names() {
        let path = format!("usr/lib/mvm/runners/{runner}");
        assert!(names.contains(&path), "{path} not in {names:?}");
    }
    assert!(mvm_guest::python_sdk_files().any(|f| f == "__init__.py"));
    for file in mvm_guest::python_sdk_files() {
        let path = format!("usr/lib/mvm/python/mvm/{file}");
        assert!(names.contains(&path), "{path} not in {names:?}");
    }
    assert_eq!(assets.cmdline_base, mvm_guest::CMDLINE_BASE);
    assert!(assets.kernel.is_file());

    // Same inputs, same cached file.
    let again = ensure_assets(&cache, Progress::Hidden).unwrap();
    assert_eq!(again.initrd, assets.initrd);
}
