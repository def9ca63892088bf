//! The QEMU command line for a [`VmSpec`]: the `microvm` machine with only
//! the devices the spec asks for.

use std::ffi::OsString;
use std::path::Path;

use crate::spec::{Accel, Network, Protocol, VmSpec};

/// Name of the virtio-serial port the guest agent looks for.
pub const AGENT_PORT_NAME: &str = "mvm.agent";
/// Name of the virtio-serial port of the guest's broker channel (the same
/// as `mvm_proto::broker::BROKER_PORT_NAME`; this crate depends on nothing).
pub const BROKER_PORT_NAME: &str = "mvm.broker";

/// TCG's translation cache, MiB (`-accel tcg,tb-size=`).
pub const TCG_TB_CACHE_MIB: u32 = 24;

/// The arguments after the QEMU binary. `host_tsc_khz` is the host's TSC
/// frequency, passed to TCG guests (see `tsc.rs`).
pub fn command_line(spec: &VmSpec, host_tsc_khz: Option<u32>) -> Vec<OsString> {
    let mut args = Args::default();
    // No option ROMs, RTC or PCI: the smallest machine that boots a PVH
    // kernel. ACPI stays on because Debian's kernel finds the virtio-mmio
    // devices through it (it lacks VIRTIO_MMIO_CMDLINE_DEVICES).
    args.pair("-M", "microvm,x-option-roms=off,rtc=off,isa-serial=on");
    args.flags(&["-nodefaults", "-no-user-config", "-nographic", "-no-reboot"]);
    let cpu = match spec.accel {
        Accel::Kvm => "host",
        Accel::Tcg => "max",
    };
    match spec.accel {
        Accel::Kvm => args.pair("-accel", "kvm"),
        // TCG's translated code goes to a cache QEMU reserves at 1 GiB
        // by default, and a Linux boot plus an interpreter fill ~100 MiB
        // of it: resident, per instance. Capped, old translations are
        // dropped and redone when needed (see docs/runtime.md for the
        // measured cost).
        Accel::Tcg => args.pair("-accel", &format!("tcg,tb-size={TCG_TB_CACHE_MIB}")),
    }
    args.pair("-cpu", cpu);
    args.pair("-smp", &spec.vcpus.to_string());
    args.pair("-m", &format!("{}M", spec.memory_mib));

    args.path("-kernel", "", &spec.kernel, "");
    args.path("-initrd", "", &spec.initrd, "");
    args.pair("-append", &kernel_cmdline(spec, host_tsc_khz));

    // append=on: the console cap truncates the file under QEMU (crate::console).
    args.path(
        "-chardev",
        "file,id=console,append=on,path=",
        &spec.console_log,
        "",
    );
    args.pair("-serial", "chardev:console");

    for (index, disk) in spec.disks.iter().enumerate() {
        let id = format!("disk{index}");
        let readonly = if disk.read_only { "on" } else { "off" };
        args.path(
            "-drive",
            &format!("id={id},if=none,format=raw,readonly={readonly},file="),
            &disk.path,
            "",
        );
        args.pair("-device", &format!("virtio-blk-device,drive={id}"));
    }

    args.pair("-device", "virtio-serial-device");
    args.path(
        "-chardev",
        "socket,id=agent,server=on,wait=off,path=",
        &spec.agent_socket,
        "",
    );
    args.pair(
        "-device",
        &format!("virtserialport,chardev=agent,name={AGENT_PORT_NAME}"),
    );

    if let Some(broker) = &spec.broker_socket {
        args.path(
            "-chardev",
            "socket,id=broker,server=on,wait=off,path=",
            broker,
            "",
        );
        args.pair(
            "-device",
            &format!("virtserialport,chardev=broker,name={BROKER_PORT_NAME}"),
        );
    }

    if let Some(control) = &spec.control_socket {
        args.path("-qmp", "unix:", control, ",server=on,wait=off");
    }

    if let Network::User {
        forwards,
        restrict,
        exec_forwards,
    } = &spec.network
    {
        // libslirp applies `restrict` to IPv4 only: an IPv6 packet from the
        // guest is NATed to wherever it is addressed (`::ffff:a.b.c.d`
        // reaches any IPv4 host, fec0::2 the host's loopback). A restricted
        // network therefore has no IPv6 at all.
        let mut netdev = if *restrict {
            "user,id=net0,restrict=on,ipv6=off".to_string()
        } else {
            "user,id=net0,restrict=off".to_string()
        };
        for forward in forwards {
            let protocol = match forward.protocol {
                Protocol::Tcp => "tcp",
                Protocol::Udp => "udp",
            };
            netdev.push_str(&format!(
                ",hostfwd={protocol}:{}:{}-:{}",
                forward.host_address, forward.host_port, forward.guest_port
            ));
        }
        for forward in exec_forwards {
            // QEMU (libslirp) splits the command with GLib's shell-style
            // parser and spawns it per connection; no shell is involved.
            let command = forward
                .argv
                .iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" ");
            netdev.push_str(&format!(
                ",guestfwd=tcp:{}:{}-cmd:{}",
                forward.guest_addr,
                forward.guest_port,
                command.replace(',', ",,")
            ));
        }
        args.pair("-netdev", &netdev);
        args.pair("-device", "virtio-net-device,netdev=net0");
    }
    args.0
}

/// The spec's command line plus, under TCG, the TSC frequency so the kernel
/// skips a calibration that stalls on busy hosts. `tsc=reliable` keeps the
/// kernel from later distrusting a TSC that jitters under emulation.
fn kernel_cmdline(spec: &VmSpec, host_tsc_khz: Option<u32>) -> String {
    match (spec.accel, host_tsc_khz) {
        (Accel::Tcg, Some(khz)) => format!("{} tsc_early_khz={khz} tsc=reliable", spec.cmdline),
        _ => spec.cmdline.clone(),
    }
}

#[derive(Default)]
struct Args(Vec<OsString>);

impl Args {
    fn flags(&mut self, flags: &[&str]) {
        self.0.extend(flags.iter().map(OsString::from));
    }

    fn pair(&mut self, option: &str, value: &str) {
        self.0.push(option.into());
        self.0.push(value.into());
    }

    /// An option whose value embeds a path between a prefix and a suffix.
    /// QEMU splits option values on commas, so commas in the path are doubled.
    fn path(&mut self, option: &str, prefix: &str, path: &Path, suffix: &str) {
        let mut value = OsString::from(prefix);
        value.push(escape_commas(path));
        value.push(suffix);
        self.0.push(option.into());
        self.0.push(value);
    }
}

/// Single-quotes `arg` for GLib's `g_shell_parse_argv`.
fn shell_quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', "'\\''"))
}

fn escape_commas(path: &Path) -> OsString {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let mut escaped = Vec::with_capacity(path.as_os_str().len());
    for &byte in path.as_os_str().as_bytes() {
        escaped.push(byte);
        if byte == b',' {
            escaped.push(b',');
        }
    }
    OsString::from_vec(escaped)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::spec::{Disk, PortForward};

    fn spec(network: Network) -> VmSpec {
        VmSpec {
            kernel: "/k/vmlinux".into(),
            initrd: "/k/initrd.cpio".into(),
            cmdline: "console=ttyS0 quiet".into(),
            vcpus: 2,
            memory_mib: 256,
            disks: vec![
                Disk {
                    path: "/img/root,v1.ext4".into(),
                    read_only: true,
                },
                Disk {
                    path: "/i/scratch.ext4".into(),
                    read_only: false,
                },
            ],
            agent_socket: "/i/agent.sock".into(),
            console_log: "/i/console.log".into(),
            vmm_log: PathBuf::from("/i/qemu.log"),
            broker_socket: None,
            control_socket: Some("/i/qmp.sock".into()),
            network,
            accel: Accel::Tcg,
        }
    }

    fn joined(spec: &VmSpec) -> String {
        command_line(spec, None)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn disks_keep_their_order_and_access_mode() {
        let line = joined(&spec(Network::None));
        let root = line
            .find("readonly=on,file=/img/root,,v1.ext4 -device virtio-blk-device,drive=disk0")
            .expect(&line);
        let scratch = line
            .find("readonly=off,file=/i/scratch.ext4 -device virtio-blk-device,drive=disk1")
            .expect(&line);
        assert!(root < scratch);
    }

    #[test]
    fn agent_channel_and_control_socket_are_listening_sockets() {
        let line = joined(&spec(Network::None));
        assert!(line.contains("-chardev socket,id=agent,server=on,wait=off,path=/i/agent.sock"));
        assert!(line.contains("-device virtserialport,chardev=agent,name=mvm.agent"));
        assert!(line.contains("-qmp unix:/i/qmp.sock,server=on,wait=off"));
        assert!(line.contains("-accel tcg,tb-size=24 -cpu max -smp 2 -m 256M"));
        assert!(
            !line.contains("mvm.broker"),
            "no broker socket, no port: {line}"
        );
    }

    #[test]
    fn the_broker_channel_is_a_second_port_on_its_own_socket() {
        let mut vm = spec(Network::None);
        vm.broker_socket = Some("/i/broker.sock".into());
        let line = joined(&vm);
        assert!(line.contains("-chardev socket,id=broker,server=on,wait=off,path=/i/broker.sock"));
        assert!(line.contains("-device virtserialport,chardev=broker,name=mvm.broker"));
    }

    #[test]
    fn tcg_guests_are_told_the_tsc_frequency() {
        let mut vm = spec(Network::None);
        let append = |vm: &VmSpec| {
            let args = command_line(vm, Some(1_996_248));
            let at = args.iter().position(|a| a == "-append").unwrap();
            args[at + 1].to_string_lossy().into_owned()
        };
        assert_eq!(
            append(&vm),
            "console=ttyS0 quiet tsc_early_khz=1996248 tsc=reliable"
        );
        vm.accel = Accel::Kvm;
        assert_eq!(append(&vm), "console=ttyS0 quiet");
    }

    #[test]
    fn no_network_means_no_network_device() {
        let line = joined(&spec(Network::None));
        assert!(!line.contains("netdev"), "{line}");
        assert!(!line.contains("virtio-net"), "{line}");
    }

    #[test]
    fn user_network_forwards_bind_to_loopback() {
        let line = joined(&spec(Network::User {
            forwards: vec![PortForward {
                protocol: Protocol::Tcp,
                host_address: std::net::Ipv4Addr::LOCALHOST,
                host_port: 8080,
                guest_port: 80,
            }],
            restrict: true,
            exec_forwards: vec![],
        }));
        assert!(line.contains(
            "-netdev user,id=net0,restrict=on,ipv6=off,hostfwd=tcp:127.0.0.1:8080-:80 -device virtio-net-device,netdev=net0"
        ));
    }

    #[test]
    fn exec_forwards_quote_their_command_and_escape_commas() {
        let line = joined(&spec(Network::User {
            forwards: vec![],
            restrict: true,
            exec_forwards: vec![crate::spec::ExecForward {
                guest_addr: std::net::Ipv4Addr::new(10, 0, 2, 100),
                guest_port: 3128,
                argv: vec!["/opt/a,b/mvmctl".into(), "it's".into()],
            }],
        }));
        assert!(
            line.contains(
                "-netdev user,id=net0,restrict=on,ipv6=off,guestfwd=tcp:10.0.2.100:3128-cmd:'/opt/a,,b/mvmctl' 'it'\\''s' "
            ),
            "{line}"
        );
    }
}
