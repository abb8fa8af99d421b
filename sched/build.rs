//! Declares the `loom` cfg so `--cfg loom` builds (the model-checked tests) pass `check-cfg`.
//!
//! A package that inherits `[workspace.lints]` cannot also extend `unexpected_cfgs` itself, so
//! the declaration lives here instead of in the root `Cargo.toml`.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(loom)");
}
