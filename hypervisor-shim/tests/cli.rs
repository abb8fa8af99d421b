//! Runs the `ferrix-shim` binary and checks exit codes and error messages.

mod common;

use std::process::{Command, Output};

use common::{Asm, elf, kvm_available, segment, temp_file};

fn shim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrix-shim"))
        .args(args)
        .output()
        .expect("run ferrix-shim")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn missing_image_exits_3() {
    let o = shim(&["/nonexistent/ferrix-image.elf"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.starts_with("ferrix-shim: ") && e.contains("not found"),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn text_file_is_not_an_elf() {
    let p = temp_file("text", b"this is not a kernel\n");
    let o = shim(&[p.to_str().unwrap()]);
    let _ = std::fs::remove_file(&p);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("not an ELF"), "{}", stderr(&o));
}

#[test]
fn elf_without_pvh_note_exits_3() {
    let p = temp_file("nonote", &elf(&segment(Asm::default().hang(), &[]), false));
    let o = shim(&[p.to_str().unwrap()]);
    let _ = std::fs::remove_file(&p);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("PVH note"), "{}", stderr(&o));
}

#[test]
fn tiny_memory_exits_5() {
    let p = temp_file("mem", &elf(&segment(Asm::default().hang(), &[]), true));
    let o = shim(&[p.to_str().unwrap(), "--mem", "1M"]);
    let _ = std::fs::remove_file(&p);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains("16 MiB"), "{}", stderr(&o));
}

#[test]
fn bad_usage_exits_2() {
    assert_eq!(shim(&[]).status.code(), Some(2));
    assert_eq!(shim(&["img", "--mem", "lots"]).status.code(), Some(2));
}

#[test]
fn guest_exit_code_and_timeout() {
    if !kvm_available() {
        return;
    }
    let exit9 = Asm::default().out_port(ferrix_abi::PORT_EXIT, 9).hang();
    let p = temp_file("exit9", &elf(&segment(exit9, &[]), true));
    let o = shim(&[
        p.to_str().unwrap(),
        "--cpus",
        "2",
        "--mem",
        "64M",
        "--",
        "hello",
        "world",
    ]);
    let _ = std::fs::remove_file(&p);
    assert_eq!(o.status.code(), Some(9), "{}", stderr(&o));

    let p = temp_file("hang", &elf(&segment(Asm::default().hang(), &[]), true));
    let o = shim(&[p.to_str().unwrap(), "--timeout", "0.5"]);
    let _ = std::fs::remove_file(&p);
    assert_eq!(o.status.code(), Some(124), "{}", stderr(&o));
}

#[test]
fn bad_net_spec_exits_5_with_one_line() {
    let o = shim(&["/nonexistent/img.elf", "--net", "eth0"]);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.starts_with("ferrix-shim: invalid --net \"eth0\""), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn uncreatable_switch_dir_exits_5() {
    let p = temp_file("sw", &elf(&segment(Asm::default().hang(), &[]), true));
    let o = shim(&[p.to_str().unwrap(), "--net", "switch:/proc/ferrix-no/sw"]);
    let _ = std::fs::remove_file(&p);
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("switch:/proc/ferrix-no/sw: cannot create"),
        "{e}"
    );
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn net_options_need_net() {
    let o = shim(&["/nonexistent/img.elf", "--queues", "2"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}
