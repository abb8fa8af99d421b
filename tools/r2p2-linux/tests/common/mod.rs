//! Helpers shared by the r2p2-linux integration tests.

use std::process::Output;

/// The stdout of a client run that must have succeeded (else a panic with both streams).
pub fn succeeded(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "client failed: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The number after the word `key` in `line` (0 if none).
pub fn field<T: std::str::FromStr + Default>(line: &str, key: &str) -> T {
    let mut it = line.split_whitespace();
    while let Some(w) = it.next() {
        if w == key {
            return it.next().and_then(|v| v.parse().ok()).unwrap_or_default();
        }
    }
    T::default()
}
