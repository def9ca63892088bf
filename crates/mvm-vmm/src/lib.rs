//! VMM backends (QEMU microvm) and accelerator probing
