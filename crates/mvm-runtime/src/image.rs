//! The image `mvmctl up TARGET` means, looked up in the image store
//! (`mvm-image`): an image id or unique id prefix, a workload's app name or
//! workload id, or a compiled directory (by the names in its launch.json).

use std::path::Path;

use crate::error::RuntimeError;
use crate::state::ImageRef;

/// Resolves `target` in the store under `home`.
pub fn resolve(home: &Path, target: &str) -> Result<ImageRef, RuntimeError> {
    let image = mvm_image::Store::new(home)
        .resolve(target)
        .map_err(|e| RuntimeError::ImageNotFound {
            detail: e.to_string(),
            hint: "`mvmctl compile` then `mvmctl build` make an image; pass its name, id or the compiled directory"
                .into(),
        })?;
    Ok(ImageRef {
        id: image.id,
        name: image.meta.name,
        rootfs: image.rootfs,
        lock: Some(image.lock),
        launch_json: image.launch_json,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names_through_the_store_and_explains_misses() {
        let home = tempfile::tempdir().unwrap();
        let id = "ab".repeat(32);
        let dir = home.path().join("images").join(&id);
        std::fs::create_dir_all(&dir).unwrap();
        let meta = serde_json::json!({
            "image_id": id, "name": "hello", "workload_id": "hello-wl", "ir_hash": "", "sums_sha256": "",
            "base_key": "", "builder": "", "size_bytes": 0, "created_unix": 0
        });
        std::fs::write(dir.join("meta.json"), meta.to_string()).unwrap();
        mvm_image::Store::new(home.path())
            .set_name("hello", &id)
            .unwrap();

        let image = resolve(home.path(), "hello").unwrap();
        assert_eq!(
            (image.id.as_str(), image.name.as_str()),
            (id.as_str(), "hello")
        );
        assert_eq!(image.rootfs, dir.join("rootfs.ext4"));
        assert_eq!(image.launch_json, dir.join("launch.json"));

        let err = resolve(home.path(), "nothing").unwrap_err().to_string();
        assert!(err.contains("mvmctl build"), "{err}");
    }
}
