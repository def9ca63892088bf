//! Assembling an image's tree: a copy of the cached base root plus the
//! workload (`/app`, `/etc/mvm/launch.json`, `/etc/mvm/hooks/*.sh`,
//! `/etc/mvm/image.lock`).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::buildlog::BuildLog;
use crate::compiled::Compiled;
use crate::error::ImageError;

/// Copies the base root to `tree`. `cp -a` keeps owners, modes, links and
/// device nodes exactly; `--reflink=auto` shares blocks where the file
/// system allows.
pub fn copy_base(base_root: &Path, tree: &Path, log: &mut BuildLog) -> Result<(), ImageError> {
    let mut cmd = Command::new("cp");
    cmd.args(["-a", "--reflink=auto", "-T"])
        .arg(base_root)
        .arg(tree);
    log.run(
        "copying the base root",
        "cp",
        "the host needs GNU coreutils",
        &mut cmd,
    )
}

/// Adds the workload's files. Everything added is owned by the builder
/// (root) with modes 0755 for directories and scripts, 0644 otherwise,
/// except source files that were executable.
pub fn add_workload(tree: &Path, compiled: &Compiled) -> Result<(), ImageError> {
    let app = tree.join("app");
    let src = compiled.src_dir();
    if src.is_dir() {
        copy_dir(&src, &app)?;
    } else {
        mkdir(&app)?;
    }
    let etc = tree.join("etc/mvm");
    let hooks = etc.join("hooks");
    mkdir(&hooks)?;
    write(
        &etc.join("launch.json"),
        &read(&compiled.launch_path())?,
        0o644,
    )?;
    for (phase, script) in compiled.hook_scripts() {
        write(&hooks.join(format!("{phase}.sh")), &read(&script)?, 0o755)?;
    }
    Ok(())
}

/// Writes `/etc/mvm/image.lock`, last, once everything it records is known.
pub fn write_lock(tree: &Path, image_lock: &[u8]) -> Result<(), ImageError> {
    write(&tree.join("etc/mvm/image.lock"), image_lock, 0o644)
}

fn read(path: &Path) -> Result<Vec<u8>, ImageError> {
    std::fs::read(path).map_err(ImageError::io(path))
}

fn mkdir(dir: &Path) -> Result<(), ImageError> {
    std::fs::create_dir_all(dir).map_err(ImageError::io(dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(ImageError::io(dir))
}

fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), ImageError> {
    std::fs::write(path, bytes).map_err(ImageError::io(path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(ImageError::io(path))
}

fn copy_dir(from: &Path, to: &Path) -> Result<(), ImageError> {
    mkdir(to)?;
    for entry in std::fs::read_dir(from).map_err(ImageError::io(from))? {
        let entry = entry.map_err(ImageError::io(from))?;
        let (src, dest) = (entry.path(), to.join(entry.file_name()));
        let meta = src.symlink_metadata().map_err(ImageError::io(&src))?;
        if meta.is_dir() {
            copy_dir(&src, &dest)?;
        } else if meta.is_symlink() {
            let target = std::fs::read_link(&src).map_err(ImageError::io(&src))?;
            std::os::unix::fs::symlink(&target, &dest).map_err(ImageError::io(&dest))?;
        } else {
            let mode = if meta.permissions().mode() & 0o111 != 0 {
                0o755
            } else {
                0o644
            };
            write(&dest, &read(&src)?, mode)?;
        }
    }
    Ok(())
}
