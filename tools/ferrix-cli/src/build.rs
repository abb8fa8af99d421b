//! `ferrix build`: compiles an app crate into a guest image with cargo.
//!
//! Images are built for `x86_64-unknown-none` into `<workspace>/target/guest`, a target
//! directory of their own: a build started from inside `cargo test` then never waits on the
//! outer cargo's lock on `target/`. Cargo's output goes to our stderr so stdout stays clean
//! (it carries the image path, or the guest console).

use crate::error::CliError;
use crate::workspace::{list_apps, package_name, workspace_root};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The Rust target guest images are built for.
pub const GUEST_TARGET: &str = "x86_64-unknown-none";

/// Code-generation flags of every guest image: linked at 1 MiB by the script the `ferrix`
/// crate's build script puts on the link search path, static, non-PIE, with frame pointers
/// for backtraces. Passed as `RUSTFLAGS`, which cargo uses *instead of* any config-file
/// rustflags, so an app outside this repository builds the same way. (apps/.cargo/config.toml
/// repeats them for plain `cargo build` in apps/.)
pub const GUEST_RUSTFLAGS: &str = "-C link-arg=-Tferrix.ld -C relocation-model=static -C link-arg=--no-pie -C force-frame-pointers=yes";

/// What to build: a workspace package by name, or a crate directory.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Crate {
    Named(String),
    Dir { name: String, dir: PathBuf },
}

/// Builds `app` (an app name under `apps/` or a crate directory) and returns the image path.
pub fn build(app: &str, release: bool) -> Result<PathBuf, CliError> {
    let root = workspace_root()?;
    let krate = resolve(&root, app)?;
    let target_dir = root.join("target").join("guest");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());

    let mut cmd = Command::new(&cargo);
    cmd.arg("build").args(["--target", GUEST_TARGET]);
    if release {
        cmd.arg("--release");
    }
    let name = match &krate {
        Crate::Named(name) => {
            // The apps form their own workspace (apps/Cargo.toml).
            cmd.args(["-p", name]).current_dir(root.join("apps"));
            name.clone()
        }
        Crate::Dir { name, dir } => {
            // Run in the crate's directory so its own `.cargo/config.toml` chain applies.
            cmd.arg("--manifest-path")
                .arg(dir.join("Cargo.toml"))
                .current_dir(dir);
            name.clone()
        }
    };
    cmd.env("CARGO_TARGET_DIR", &target_dir)
        .env("RUSTFLAGS", GUEST_RUSTFLAGS)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .stdin(Stdio::null())
        .stdout(stderr_stdio())
        .stderr(Stdio::inherit());
    let status = cmd.status().map_err(|source| CliError::CargoSpawn {
        cargo: cargo.clone(),
        source,
    })?;
    if !status.success() {
        return Err(CliError::BuildFailed { app: name, status });
    }
    let image = image_path(&target_dir, &name, release);
    if !image.is_file() {
        return Err(CliError::ImageMissing { app: name, image });
    }
    Ok(image)
}

/// Where cargo puts the image of crate `name`.
pub fn image_path(target_dir: &Path, name: &str, release: bool) -> PathBuf {
    let profile = if release { "release" } else { "debug" };
    target_dir.join(GUEST_TARGET).join(profile).join(name)
}

/// Our stderr as a child's stdout (falls back to inheriting stdout if it cannot be duplicated).
fn stderr_stdio() -> Stdio {
    use std::os::fd::AsFd;
    match std::io::stderr().as_fd().try_clone_to_owned() {
        Ok(fd) => Stdio::from(fd),
        Err(_) => Stdio::inherit(),
    }
}

fn resolve(root: &Path, app: &str) -> Result<Crate, CliError> {
    let as_path = Path::new(app);
    if app.contains('/') || as_path.join("Cargo.toml").is_file() {
        let manifest = as_path.join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest)
            .map_err(|e| CliError::Workspace(format!("cannot read {}: {e}", manifest.display())))?;
        let name = package_name(&text).ok_or_else(|| {
            CliError::Workspace(format!("{} has no [package] name", manifest.display()))
        })?;
        let dir = as_path
            .canonicalize()
            .unwrap_or_else(|_| as_path.to_path_buf());
        return Ok(Crate::Dir { name, dir });
    }
    let apps = list_apps(root);
    let found = apps.iter().find(|(name, dir)| {
        name == app
            || dir
                .file_name()
                .is_some_and(|d| d == std::ffi::OsStr::new(app))
    });
    match found {
        Some((name, _)) => Ok(Crate::Named(name.clone())),
        None => Err(CliError::UnknownApp {
            name: app.to_string(),
            dir: root.join("apps"),
            known: apps.into_iter().map(|(n, _)| n).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::find_workspace_from;

    fn root() -> PathBuf {
        find_workspace_from(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    #[test]
    fn resolves_app_names_and_paths() {
        let root = root();
        assert_eq!(
            resolve(&root, "hello").unwrap(),
            Crate::Named("hello".into())
        );
        let dir = root.join("apps/hello");
        match resolve(&root, dir.to_str().unwrap()).unwrap() {
            Crate::Dir { name, .. } => assert_eq!(name, "hello"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_app_lists_the_known_ones() {
        let err = resolve(&root(), "no-such-app").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let msg = err.to_string();
        assert!(
            msg.contains("no-such-app") && msg.contains("hello"),
            "{msg}"
        );
    }

    #[test]
    fn image_path_layout() {
        assert_eq!(
            image_path(Path::new("/w/target/guest"), "hello", true),
            PathBuf::from("/w/target/guest/x86_64-unknown-none/release/hello")
        );
    }
}
