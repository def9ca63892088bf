//! Choosing the accelerator: KVM where the host really offers hardware
//! virtualization, QEMU's TCG emulation everywhere else.
//!
//! `/dev/kvm` alone is not enough: a nested host may expose `kvm_pvm`, which
//! accepts `KVM_CREATE_VM` but cannot run an ordinary guest (see
//! shared/spec/runtime.md). So KVM is chosen only when /dev/kvm answers
//! and the CPU advertises vmx or svm.

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::spec::Accel;

/// Environment variable that forces the accelerator: `kvm` or `tcg`.
pub const ACCEL_ENV: &str = "MVM_ACCEL";
/// `_IO(KVMIO, 0x00)`: returns the KVM API version.
const KVM_GET_API_VERSION: libc::c_ulong = 0xAE00;
/// The only KVM API version Linux has ever shipped.
const KVM_API_VERSION: libc::c_int = 12;

/// The accelerator chosen for this host and the facts behind the choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccelReport {
    pub chosen: Accel,
    /// One sentence a person can read in `mvmctl doctor`.
    pub reason: String,
    /// /dev/kvm opened and answered KVM_GET_API_VERSION.
    pub kvm_device: bool,
    /// /proc/cpuinfo lists vmx (Intel) or svm (AMD).
    pub cpu_flags_virt: bool,
    /// The kvm_pvm module (pagetable-based nested KVM) is loaded.
    pub kvm_pvm: bool,
}

/// Host facts the decision is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HostFacts {
    kvm_device: bool,
    cpu_flags_virt: bool,
    kvm_pvm: bool,
}

/// Probes this host and honours `MVM_ACCEL`. Never fails: any problem
/// probing means TCG, and the reason says why.
pub fn probe() -> AccelReport {
    let facts = HostFacts {
        kvm_device: kvm_device_answers(Path::new("/dev/kvm")),
        cpu_flags_virt: std::fs::read_to_string("/proc/cpuinfo")
            .is_ok_and(|cpuinfo| cpu_has_virt_flags(&cpuinfo)),
        kvm_pvm: Path::new("/sys/module/kvm_pvm").exists(),
    };
    decide(std::env::var(ACCEL_ENV).ok().as_deref(), facts)
}

fn decide(requested: Option<&str>, facts: HostFacts) -> AccelReport {
    let report = |chosen, reason: String| AccelReport {
        chosen,
        reason,
        kvm_device: facts.kvm_device,
        cpu_flags_virt: facts.cpu_flags_virt,
        kvm_pvm: facts.kvm_pvm,
    };
    let probed = |note: String| {
        let (chosen, why) = match facts {
            HostFacts {
                kvm_device: true,
                cpu_flags_virt: true,
                ..
            } => (Accel::Kvm, "/dev/kvm works and the CPU advertises vmx/svm".to_owned()),
            HostFacts {
                kvm_device: true,
                kvm_pvm: true,
                ..
            } => (
                Accel::Tcg,
                "/dev/kvm is kvm_pvm (nested, no vmx/svm), which cannot run ordinary guests, so QEMU emulates (TCG)"
                    .to_owned(),
            ),
            HostFacts {
                kvm_device: true,
                ..
            } => (
                Accel::Tcg,
                "/dev/kvm opens but the CPU advertises no vmx/svm, so QEMU emulates (TCG)".to_owned(),
            ),
            _ => (
                Accel::Tcg,
                "/dev/kvm is missing or not accessible, so QEMU emulates (TCG)".to_owned(),
            ),
        };
        report(chosen, format!("{note}{why}"))
    };
    match requested.map(str::trim) {
        None | Some("") => probed(String::new()),
        Some(name) => match name.parse::<Accel>() {
            Ok(accel) => report(
                accel,
                format!(
                    "{ACCEL_ENV}={accel} forces {}",
                    accel.as_str().to_uppercase()
                ),
            ),
            Err(_) => probed(format!(
                "{ACCEL_ENV}={name:?} is not kvm or tcg and was ignored; "
            )),
        },
    }
}

fn cpu_has_virt_flags(cpuinfo: &str) -> bool {
    cpuinfo
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(key, _)| key.trim() == "flags")
        .any(|(_, flags)| flags.split_whitespace().any(|f| f == "vmx" || f == "svm"))
}

fn kvm_device_answers(device: &Path) -> bool {
    let Ok(kvm) = OpenOptions::new().read(true).write(true).open(device) else {
        return false;
    };
    // SAFETY: KVM_GET_API_VERSION takes no argument and only reads the fd.
    let version = unsafe { libc::ioctl(kvm.as_raw_fd(), KVM_GET_API_VERSION, 0) };
    version == KVM_API_VERSION
}

#[cfg(test)]
mod tests {
    use super::*;

    const PVM_HOST: HostFacts = HostFacts {
        kvm_device: true,
        cpu_flags_virt: false,
        kvm_pvm: true,
    };
    const VMX_HOST: HostFacts = HostFacts {
        kvm_device: true,
        cpu_flags_virt: true,
        kvm_pvm: false,
    };

    #[test]
    fn kvm_pvm_without_vmx_gets_tcg_with_the_reason() {
        let report = decide(None, PVM_HOST);
        assert_eq!(report.chosen, Accel::Tcg);
        assert!(report.reason.contains("kvm_pvm"), "{}", report.reason);
    }

    #[test]
    fn hardware_virtualization_gets_kvm() {
        assert_eq!(decide(None, VMX_HOST).chosen, Accel::Kvm);
        let no_device = HostFacts {
            kvm_device: false,
            ..VMX_HOST
        };
        assert_eq!(decide(None, no_device).chosen, Accel::Tcg);
    }

    #[test]
    fn the_environment_overrides_and_says_so() {
        let forced = decide(Some("kvm"), PVM_HOST);
        assert_eq!(forced.chosen, Accel::Kvm);
        assert_eq!(forced.reason, "MVM_ACCEL=kvm forces KVM");
        let forced = decide(Some("tcg"), VMX_HOST);
        assert_eq!(forced.chosen, Accel::Tcg);
        assert_eq!(forced.reason, "MVM_ACCEL=tcg forces TCG");
    }

    #[test]
    fn a_bad_override_is_ignored_not_fatal() {
        let report = decide(Some("hvf"), VMX_HOST);
        assert_eq!(report.chosen, Accel::Kvm);
        assert!(
            report.reason.contains("\"hvf\" is not kvm or tcg"),
            "{}",
            report.reason
        );
    }

    #[test]
    fn virt_flags_are_read_from_cpuinfo() {
        assert!(cpu_has_virt_flags(
            "processor\t: 0\nflags\t\t: fpu vme vmx sse\n"
        ));
        assert!(!cpu_has_virt_flags(
            "processor\t: 0\nflags\t\t: fpu vme sse svm_lock\n"
        ));
    }

    #[test]
    fn a_missing_device_does_not_answer() {
        assert!(!kvm_device_answers(Path::new("/nonexistent/kvm")));
    }

    /// On this machine the probe must never crash, whatever it finds.
    #[test]
    fn probing_the_real_host_gives_a_reason() {
        let report = probe();
        assert!(!report.reason.is_empty());
    }
}
