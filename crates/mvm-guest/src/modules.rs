//! Choosing the kernel modules the guest needs and the order to load them.
//!
//! Debian's kernel package ships no `modules.dep` (depmod runs at install
//! time), so dependencies come from each module's own `.modinfo` section:
//! the `depends=` line modpost wrote when the kernel was built.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

use object::{Object, ObjectSection};

#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error("kernel module {name} is not valid ELF: {source}")]
    NotElf {
        name: String,
        source: object::read::Error,
    },
    #[error("kernel module {0} has no .modinfo section")]
    NoModinfo(String),
    #[error("decompressing kernel module {name}: {source}")]
    Decompress {
        name: String,
        source: std::io::Error,
    },
    #[error(
        "the guest needs kernel module `{0}`, but the kernel package neither builds it in nor ships it"
    )]
    Missing(String),
    #[error("kernel modules depend on each other in a cycle through `{0}`")]
    Cycle(String),
}

/// How a module file in the package is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleFormat {
    Plain,
    Xz,
}

/// Recognises `foo-bar.ko` / `foo-bar.ko.xz` and returns the module name
/// (`foo_bar`: the kernel treats `-` and `_` alike and reports `_`).
pub fn module_file(path: &Path) -> Option<(String, ModuleFormat)> {
    let file = path.file_name()?.to_str()?;
    let (stem, format) = if let Some(stem) = file.strip_suffix(".ko") {
        (stem, ModuleFormat::Plain)
    } else {
        (file.strip_suffix(".ko.xz")?, ModuleFormat::Xz)
    };
    Some((stem.replace('-', "_"), format))
}

/// Reads a module as stored in the package into a plain `.ko`, so the agent
/// can hand it straight to `finit_module` without decompression support.
pub fn read_plain(
    name: &str,
    format: ModuleFormat,
    mut reader: impl Read,
) -> Result<Vec<u8>, ModuleError> {
    let mut plain = Vec::new();
    let result = match format {
        ModuleFormat::Plain => reader.read_to_end(&mut plain),
        ModuleFormat::Xz => xz2::read::XzDecoder::new(reader).read_to_end(&mut plain),
    };
    result.map_err(|source| ModuleError::Decompress {
        name: name.to_owned(),
        source,
    })?;
    Ok(plain)
}

/// The module names listed in a module's `depends=` modinfo entry.
pub fn dependencies(name: &str, ko: &[u8]) -> Result<Vec<String>, ModuleError> {
    let file = object::File::parse(ko).map_err(|e| ModuleError::NotElf {
        name: name.to_owned(),
        source: e,
    })?;
    let modinfo = file
        .section_by_name(".modinfo")
        .ok_or_else(|| ModuleError::NoModinfo(name.to_owned()))?
        .data()
        .map_err(|e| ModuleError::NotElf {
            name: name.to_owned(),
            source: e,
        })?;
    Ok(modinfo
        .split(|&b| b == 0)
        .filter_map(|entry| entry.strip_prefix(b"depends="))
        .flat_map(|list| list.split(|&b| b == b','))
        .filter(|dep| !dep.is_empty())
        .map(|dep| String::from_utf8_lossy(dep).replace('-', "_"))
        .collect())
}

/// Module names built into the kernel, from `modules.builtin` lines such as
/// `kernel/fs/ext4/ext4.ko`.
pub fn builtin_names(modules_builtin: &str) -> BTreeSet<String> {
    modules_builtin
        .lines()
        .filter_map(|line| module_file(Path::new(line.trim())).map(|(name, _)| name))
        .collect()
}

/// The modules to load for `wanted`, each after everything it depends on.
/// Built-in modules are skipped; anything else missing is an error.
pub fn load_order(
    wanted: &[&str],
    depends: &BTreeMap<String, Vec<String>>,
    builtin: &BTreeSet<String>,
) -> Result<Vec<String>, ModuleError> {
    let mut order = Vec::new();
    let mut in_progress = BTreeSet::new();
    for name in wanted {
        visit(name, depends, builtin, &mut in_progress, &mut order)?;
    }
    Ok(order)
}

fn visit(
    name: &str,
    depends: &BTreeMap<String, Vec<String>>,
    builtin: &BTreeSet<String>,
    in_progress: &mut BTreeSet<String>,
    order: &mut Vec<String>,
) -> Result<(), ModuleError> {
    if builtin.contains(name) || order.iter().any(|done| done == name) {
        return Ok(());
    }
    let deps = depends
        .get(name)
        .ok_or_else(|| ModuleError::Missing(name.to_owned()))?;
    if !in_progress.insert(name.to_owned()) {
        return Err(ModuleError::Cycle(name.to_owned()));
    }
    for dep in deps {
        visit(dep, depends, builtin, in_progress, order)?;
    }
    in_progress.remove(name);
    order.push(name.to_owned());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        edges
            .iter()
            .map(|(n, deps)| (n.to_string(), deps.iter().map(|d| d.to_string()).collect()))
            .collect()
    }

    #[test]
    fn dependencies_come_first_and_appear_once() {
        let depends = graph(&[
            ("virtio_blk", &["virtio", "virtio_ring"]),
            ("virtio_mmio", &["virtio", "virtio_ring"]),
            ("virtio", &[]),
            ("virtio_ring", &[]),
        ]);
        let order = load_order(&["virtio_mmio", "virtio_blk"], &depends, &BTreeSet::new()).unwrap();
        assert_eq!(
            order,
            ["virtio", "virtio_ring", "virtio_mmio", "virtio_blk"]
        );
    }

    #[test]
    fn builtin_modules_are_skipped_and_unknown_ones_fail() {
        let depends = graph(&[("overlay", &[])]);
        let builtin = builtin_names("kernel/fs/ext4/ext4.ko\nkernel/fs/jbd2/jbd2.ko\n");
        assert_eq!(
            load_order(&["ext4", "overlay"], &depends, &builtin).unwrap(),
            ["overlay"]
        );
        assert!(matches!(
            load_order(&["erofs"], &depends, &builtin),
            Err(ModuleError::Missing(name)) if name == "erofs"
        ));
    }

    /// The parser's error stays the cause and still ends the message.
    #[test]
    fn a_module_that_is_not_elf_keeps_the_parser_error() {
        let err = dependencies("virtio_blk", b"not an ELF file").unwrap_err();
        let source = std::error::Error::source(&err).expect("the parser's error");
        assert!(matches!(err, ModuleError::NotElf { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("kernel module virtio_blk is not valid ELF: {source}")
        );
    }

    #[test]
    fn cycles_are_reported() {
        let depends = graph(&[("a", &["b"]), ("b", &["a"])]);
        assert!(matches!(
            load_order(&["a"], &depends, &BTreeSet::new()),
            Err(ModuleError::Cycle(_))
        ));
    }

    #[test]
    fn file_names_map_to_module_names() {
        assert_eq!(
            module_file(Path::new(
                "kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko"
            )),
            Some(("vmw_vsock_virtio_transport".into(), ModuleFormat::Plain))
        );
        assert_eq!(
            module_file(Path::new("a/crc-t10dif.ko.xz")),
            Some(("crc_t10dif".into(), ModuleFormat::Xz))
        );
        assert_eq!(module_file(Path::new("modules.order")), None);
    }
}
