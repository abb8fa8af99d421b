//! Finding the ferrix workspace and the app crates in it.
//!
//! The root is the nearest directory, from the current directory upwards, whose `Cargo.toml`
//! has a `[workspace]` table; failing that, the workspace this binary was compiled in
//! (`CARGO_MANIFEST_DIR/../..`), so an installed `ferrix` still finds its sources.

use crate::error::CliError;
use std::path::{Path, PathBuf};

/// The workspace root, see the module doc.
pub fn workspace_root() -> Result<PathBuf, CliError> {
    if let Ok(cwd) = std::env::current_dir()
        && let Some(root) = find_workspace_from(&cwd)
    {
        return Ok(root);
    }
    let compiled = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if is_workspace_root(&compiled) {
        return Ok(compiled.canonicalize().unwrap_or(compiled));
    }
    Err(CliError::Workspace(format!(
        "cannot find the ferrix workspace: no Cargo.toml with [workspace] above the current \
         directory, nor at {}",
        compiled.display()
    )))
}

/// The nearest ancestor of `start` (itself included) that is a workspace root.
pub fn find_workspace_from(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|d| is_workspace_root(d))
        .map(Path::to_path_buf)
}

fn is_workspace_root(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .map(|t| t.lines().any(|l| l.trim() == "[workspace]"))
        .unwrap_or(false)
}

/// The `[package] name` of a `Cargo.toml` text, found by a line scan (enough for our crates,
/// which keep `name = "..."` on one line).
pub fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
            continue;
        }
        if !in_package {
            continue;
        }
        if let Some((key, value)) = line.split_once('=')
            && key.trim() == "name"
        {
            let v = value.trim().trim_matches(|c| c == '"' || c == '\'');
            return Some(v.to_string());
        }
    }
    None
}

/// The app crates under `apps/`: (package name, crate directory), sorted by name.
pub fn list_apps(root: &Path) -> Vec<(String, PathBuf)> {
    let mut apps = Vec::new();
    if let Ok(rd) = std::fs::read_dir(root.join("apps")) {
        for entry in rd.flatten() {
            let dir = entry.path();
            if let Ok(text) = std::fs::read_to_string(dir.join("Cargo.toml"))
                && let Some(name) = package_name(&text)
            {
                apps.push((name, dir));
            }
        }
    }
    apps.sort();
    apps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_package_name() {
        let t =
            "[package]\nname = \"hello\"\nversion.workspace = true\n[dependencies]\nname = \"x\"\n";
        assert_eq!(package_name(t).as_deref(), Some("hello"));
        assert_eq!(package_name("[dependencies]\nname = \"x\"\n"), None);
    }

    #[test]
    fn finds_this_workspace() {
        let root = find_workspace_from(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
        assert!(root.join("tools/ferrix-cli").is_dir());
        assert!(list_apps(&root).iter().any(|(n, _)| n == "hello"));
    }
}
