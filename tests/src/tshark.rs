//! tshark with the R2P2 dissector (`tools/wireshark/r2p2.lua`) loaded: runs it over a capture
//! and returns the values of the fields asked for, one row per frame.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The dissector script in this repository.
pub fn dissector() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/wireshark/r2p2.lua")
}

/// True if `tshark` runs. When it does not: the test fails if `CI` is set (`.ci/run` installs
/// it), otherwise the reason is printed and false returned (the caller skips).
pub fn require() -> bool {
    let runs = Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !runs {
        let msg = "tshark is not installed (apt-get install tshark; .ci/run does)";
        assert!(std::env::var_os("CI").is_none(), "{msg}");
        eprintln!("skipping: {msg}");
    }
    runs
}

/// Runs tshark with the dissector on `pcap` (two passes, so earlier packets of a message
/// know the frame it was reassembled in), keeping the frames that match the display filter
/// `filter`, and returns the values of `fields` for each (`-T fields`, several occurrences
/// joined by commas, absent fields empty). Panics if tshark fails or reports a Lua error.
pub fn fields(pcap: &Path, filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-X")
        .arg(format!("lua_script:{}", dissector().display()))
        .args(["-2", "-n", "-r"])
        .arg(pcap)
        .args(["-Y", filter, "-T", "fields", "-E", "occurrence=a"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tshark failed: {stderr}");
    assert!(
        !stdout.contains("Lua Error") && !stderr.contains("Lua"),
        "the dissector raised a Lua error:\n{stderr}\n{stdout}"
    );
    stdout
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}
