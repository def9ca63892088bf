//! A running QEMU process started by [`super::Qemu`].

use std::process::{Child, ExitStatus};

use crate::VmProcess;

/// Owns the QEMU child process. Dropping it kills the VM unless it was
/// [disowned](VmProcess::disown), so a crashing host process never leaves
/// a guest running behind it.
#[derive(Debug)]
pub struct QemuProcess {
    child: Option<Child>,
    pid: u32,
}

impl QemuProcess {
    pub(crate) fn new(child: Child) -> Self {
        let pid = child.id();
        Self {
            child: Some(child),
            pid,
        }
    }

    fn child(&mut self) -> &mut Child {
        self.child
            .as_mut()
            .expect("the child is only taken by disown, which consumes self")
    }
}

impl VmProcess for QemuProcess {
    fn pid(&self) -> u32 {
        self.pid
    }

    fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        self.child().try_wait()
    }

    fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.child().wait()
    }

    fn kill(&mut self) -> std::io::Result<()> {
        let child = self.child();
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        child.kill()?;
        child.wait().map(drop)
    }

    fn disown(mut self: Box<Self>) -> u32 {
        self.child = None;
        self.pid
    }
}

impl Drop for QemuProcess {
    fn drop(&mut self) {
        if self.child.is_some()
            && let Err(error) = self.kill()
        {
            tracing::warn!(pid = self.pid, %error, "could not stop QEMU");
        }
    }
}
