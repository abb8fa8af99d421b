//! Helpers shared by this crate's integration tests: temp dirs and fake QEMU scripts.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// A fresh directory under the system temp dir, unique to this process and `name`.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferrix-cli-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes an executable `/bin/sh` script `body` as `dir/qemu` and returns its path.
pub fn fake_qemu(dir: &std::path::Path, body: &str) -> PathBuf {
    let path = dir.join("qemu");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A file standing in for a guest image (the fake QEMU never reads it).
pub fn fake_image(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("image.elf");
    std::fs::write(&path, b"\x7fELF not really").unwrap();
    path
}

/// Runs `f` again while it fails because the freshly written script is still open for
/// writing in a child forked by another test thread (ETXTBSY, "Text file busy").
pub fn retry_busy<T>(mut f: impl FnMut() -> T, busy: impl Fn(&T) -> bool) -> T {
    for _ in 0..50 {
        let r = f();
        if !busy(&r) {
            return r;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    f()
}
