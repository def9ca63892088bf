//! Image build: root filesystems, builder microVM, content-addressed image store
