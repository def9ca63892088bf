//! Assembling an image's tree: a copy of the cached base root plus the
//! workload (`/app`, `/etc/mvm/launch.json`, `/etc/mvm/hooks/*.sh`,
//! `/etc/mvm/image.lock`).

use std::path::Path;
use std::process::Command;

use crate::buildlog::BuildLog;
use crate::compiled::Compiled;
use crate::error::ImageError;
use crate::tree::{Kind, Tree};

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
/// except source files that were executable. Written through [`Tree`], so
/// no link already in the tree (or in the compile output) is followed.
pub fn add_workload(tree: &Path, compiled: &Compiled) -> Result<(), ImageError> {
    let tree = Tree::open(tree)?;
    let app = Path::new("app");
    tree.mkdir(app, 0o755, None)?;
    for entry in compiled.src_entries() {
        let dest = app.join(&entry.rel);
        match &entry.kind {
            Kind::Dir => tree.mkdir(&dest, 0o755, None)?,
            Kind::File { mode, .. } => {
                let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
                let mut file = compiled.open_src(&entry.rel)?;
                tree.write_file(&dest, &mut file, mode, None)?;
            }
            Kind::Symlink { target } => tree.symlink(&dest, target, None)?,
            Kind::Special => {}
        }
    }
    add_mvm_files(&tree, compiled)
}

/// `/etc/mvm`: launch.json and the hook scripts. Written again after a
/// builder microVM ran, so what the guest left there (files, or links to
/// host paths) never stands in for them.
pub fn add_mvm_files(tree: &Tree, compiled: &Compiled) -> Result<(), ImageError> {
    let etc = Path::new("etc/mvm");
    tree.ensure_parents(&etc.join("hooks"))?;
    tree.mkdir(etc, 0o755, None)?;
    tree.mkdir(&etc.join("hooks"), 0o755, None)?;
    tree.write_file(
        &etc.join("launch.json"),
        &mut compiled.launch_bytes.as_slice(),
        0o644,
        None,
    )?;
    for (phase, script) in compiled.hook_scripts()? {
        let rel = etc.join(format!("hooks/{}.sh", phase.as_str()));
        tree.write_file(&rel, &mut script.as_slice(), 0o755, None)?;
    }
    Ok(())
}

/// Writes `/etc/mvm/image.lock`, last, once everything it records is known.
/// After a builder microVM ran, `etc/mvm` may hold links the guest
/// planted; [`Tree`] replaces them instead of writing through.
pub fn write_lock(tree: &Tree, image_lock: &[u8]) -> Result<(), ImageError> {
    let rel = Path::new("etc/mvm/image.lock");
    tree.ensure_parents(rel)?;
    tree.mkdir(Path::new("etc/mvm"), 0o755, None)?;
    tree.write_file(rel, &mut &image_lock[..], 0o644, None)?;
    Ok(())
}
