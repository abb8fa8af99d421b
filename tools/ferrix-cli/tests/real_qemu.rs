//! The `ferrix` binary against the real QEMU with a hand-assembled PVH guest (`pvh_stub.S`),
//! until the ferrix kernel boots: checks that every built-in profile is accepted by the
//! installed QEMU, that exit codes and resets come through `isa-debug-exit`, and that
//! `bench boot` reads instruction counts under `-icount`. Skipped (with a note) when QEMU or
//! the GNU assembler and linker are missing.

mod common;

use common::temp_dir;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const STUB: &str = include_str!("pvh_stub.S");

fn have(tool: &str, arg: &str) -> bool {
    Command::new(tool)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn tools_present() -> bool {
    let ok = have("qemu-system-x86_64", "--version")
        && have("as", "--version")
        && have("ld", "--version");
    if !ok {
        eprintln!("skipped: needs qemu-system-x86_64, as and ld");
    }
    ok
}

/// Assembles the stub with the given `--defsym`s into `dir/name`.
fn stub(dir: &Path, name: &str, defsyms: &[&str]) -> PathBuf {
    let src = dir.join("stub.S");
    std::fs::write(&src, STUB).unwrap();
    let obj = dir.join(format!("{name}.o"));
    let out = dir.join(name);
    let mut r#as = Command::new("as");
    r#as.arg("--64");
    for d in defsyms {
        r#as.args(["--defsym", d]);
    }
    assert!(
        r#as.arg(&src)
            .arg("-o")
            .arg(&obj)
            .status()
            .unwrap()
            .success()
    );
    let ld = Command::new("ld")
        .args([
            "-m",
            "elf_x86_64",
            "-static",
            "-nostdlib",
            "-Ttext=0x100000",
            "-e",
            "_start",
        ])
        .arg(&obj)
        .arg("-o")
        .arg(&out)
        .status()
        .unwrap();
    assert!(ld.success());
    out
}

fn ferrix(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrix"))
        .args(args)
        .env_remove("FERRIX_QEMU")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn every_profile_boots_and_returns_the_exit_code() {
    if !tools_present() {
        return;
    }
    let dir = temp_dir("real-profiles");
    let ok = stub(&dir, "ok.elf", &["CODE=0"]);
    let three = stub(&dir, "three.elf", &["CODE=3"]);
    for profile in ["microvm", "q35", "microvm-icount"] {
        for (image, code) in [(&ok, 0), (&three, 3)] {
            let o = ferrix(&[
                "run",
                image.to_str().unwrap(),
                "--profile",
                profile,
                "--timeout",
                "60",
                "--",
                "ferrix.bootstats",
            ]);
            assert_eq!(
                o.status.code(),
                Some(code),
                "{profile}: {}",
                text(&o.stderr)
            );
            assert!(text(&o.stdout).contains("hello from the stub"), "{profile}");
        }
    }
}

#[test]
fn a_triple_fault_is_reported_as_a_reset() {
    if !tools_present() {
        return;
    }
    let dir = temp_dir("real-reset");
    let reset = stub(&dir, "reset.elf", &["CODE=0", "RESET=1"]);
    let o = ferrix(&["run", reset.to_str().unwrap(), "--timeout", "60"]);
    assert_eq!(o.status.code(), Some(125), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("the guest reset (triple fault?)"));
}

#[test]
fn bench_counts_instructions_deterministically_under_icount() {
    if !tools_present() {
        return;
    }
    let dir = temp_dir("real-bench");
    let ok = stub(&dir, "ok.elf", &["CODE=0"]);
    let o = ferrix(&[
        "bench",
        "boot",
        "--runs",
        "2",
        "--timeout",
        "10",
        "--app",
        ok.to_str().unwrap(),
    ]);
    let table = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    for metric in ["insns to app entry", "insns to exit"] {
        let line = table
            .lines()
            .find(|l| l.starts_with("qemu-icount") && l.contains(metric))
            .unwrap_or_else(|| panic!("no {metric} in\n{table}"));
        let nums: Vec<f64> = line
            .split_whitespace()
            .rev()
            .take(4)
            .map(|n| {
                n.parse()
                    .unwrap_or_else(|e| panic!("{n:?} in {line:?}: {e}"))
            })
            .collect();
        // runs, max, min, median. Under icount the counts repeat; QEMU may still shift a few
        // instructions between runs on a loaded host (timer interrupt placement), so allow 1 %.
        assert_eq!(nums[0], 2.0, "{line}");
        assert!(nums[2] > 0.0 && nums[1] <= nums[2] * 1.01, "{line}");
    }
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("qemu-tcg-microvm") && l.contains("wall ms to exit")),
        "{table}"
    );
}
