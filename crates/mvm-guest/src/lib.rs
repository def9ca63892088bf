//! Guest boot assets: Debian cloud kernel fetch and cache, modules, initramfs with the embedded static agent
