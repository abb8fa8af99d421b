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

/// Frames in `pcap` matching the display filter `filter` (None: tshark not installed).
/// Panics if tshark fails otherwise (a bad filter, an unreadable file).
pub fn count(pcap: &Path, filter: &str) -> Option<usize> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .args(["-Y", filter])
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8_lossy(&out.stdout).lines().count())
}

/// QEMU's `filter-dump` on a TAP netdev with a virtio-net header writes that 12-byte header
/// before each frame: when the capture holds no readable ARP or IP frame, a copy with those
/// bytes cut (`editcap -C 12`, beside it) is returned instead.
pub fn readable(pcap: &Path) -> PathBuf {
    if count(pcap, "arp || ip").unwrap_or(1) > 0 {
        return pcap.to_path_buf();
    }
    let cut = pcap.with_extension("cut.pcap");
    let ok = Command::new("editcap")
        .args(["-C", "12"])
        .arg(pcap)
        .arg(&cut)
        .status()
        .is_ok_and(|s| s.success());
    if ok { cut } else { pcap.to_path_buf() }
}
