//! Guest kernel (Debian cloud kernel) fetch, cache and initramfs assembly
