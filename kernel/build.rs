//! Puts the kernel's linker script on the link search path as `ferrix.ld`, so every app image
//! links with `-Tferrix.ld` (set in .cargo/config.toml for the x86_64-unknown-none target).
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let script = include_str!("linker.ld");
    std::fs::write(out.join("ferrix.ld"), script).expect("write linker script to OUT_DIR");
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rerun-if-changed=linker.ld");
}
