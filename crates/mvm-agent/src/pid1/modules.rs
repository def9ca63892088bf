//! Loads the kernel modules the initramfs ships, in the order
//! `/lib/modules/load-order` lists them (dependencies first).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::log;

const MODULES_DIR: &str = "/lib/modules";

/// finit_module flag: the file is compressed and the kernel decompresses it.
const MODULE_INIT_COMPRESSED_FILE: libc::c_int = 4;

/// The modules every boot loads.
pub const BOOT_LIST: &str = "load-order";
/// The further modules a guest with a network device loads.
pub const NETWORK_LIST: &str = "load-order.network";

/// Loads every module `list` names. A module that fails is logged and
/// skipped: the device it drives is then missing, and the wait for that
/// device reports the problem in terms the user can act on.
pub fn load_list(list: &str) -> io::Result<usize> {
    let order = match std::fs::read_to_string(Path::new(MODULES_DIR).join(list)) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut loaded = 0;
    for name in order.lines().map(str::trim).filter(|l| !l.is_empty()) {
        match load(&Path::new(MODULES_DIR).join(name)) {
            Ok(()) => loaded += 1,
            Err(e) => log!("module {name} not loaded: {e}"),
        }
    }
    Ok(loaded)
}

fn load(path: &Path) -> io::Result<()> {
    let file = File::open(path)?;
    let flags = if path
        .extension()
        .is_some_and(|e| e == "xz" || e == "zst" || e == "gz")
    {
        MODULE_INIT_COMPRESSED_FILE
    } else {
        0
    };
    let params = c"";
    // SAFETY: finit_module takes an open fd, a NUL-terminated parameter
    // string and flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_finit_module,
            file.as_raw_fd(),
            params.as_ptr(),
            flags,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    // Already loaded (or built in): nothing to do.
    if err.raw_os_error() == Some(libc::EEXIST) {
        Ok(())
    } else {
        Err(err)
    }
}
