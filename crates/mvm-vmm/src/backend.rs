//! Choosing a backend: callers name a [`Backend`] (usually the default) and
//! get a [`Vmm`], never the type behind it, so a second backend is one new
//! module plus a variant here, with no edits in the callers.

use crate::Vmm;
use crate::qemu::Qemu;

/// The VMMs this build can run microVMs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Backend {
    /// QEMU's `microvm` machine, run as `qemu-system-x86_64` from `PATH`.
    #[default]
    QemuMicrovm,
}

/// The backend of `kind`, ready to launch VMs.
pub fn backend(kind: Backend) -> Box<dyn Vmm> {
    match kind {
        Backend::QemuMicrovm => Box::new(Qemu::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_backend_is_qemu_microvm() {
        assert_eq!(backend(Backend::default()).name(), "qemu-microvm");
    }
}
