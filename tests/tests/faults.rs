//! Guests that misbehave on purpose (`ktest crash=...`): a page fault is reported with vector
//! 14 and the right CR2, a panic with its message, a stack overflow as a guard-page hit, and a
//! hung guest is stopped by the timeout; each with its documented exit code.

use ferrix_abi::exit;
use ferrix_cli::Vmm;
use ferrix_tests::{boot, kvm_available};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

fn page_fault_on(vmm: Vmm) {
    let b = boot("ktest", vmm, 2, &["crash=pagefault"], LIMIT);
    b.expect("exception 14 (page fault)")
        .expect("cr2=0x1000000000")
        .expect("page fault: read of 0x1000000000 (not-present)")
        .expect("backtrace:")
        .expect_exit(exit::EXCEPTION);
    // The reported RIP is an address inside the image (linked at 1 MiB).
    let rip = b
        .console
        .split("rip=0x")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .expect("rip");
    let rip = u64::from_str_radix(rip, 16).expect("hex rip");
    assert!((0x10_0000..0x100_0000).contains(&rip), "rip {rip:#x}");
}

#[test]
fn page_fault_reported_under_qemu() {
    page_fault_on(Vmm::Qemu);
}

#[test]
fn page_fault_reported_under_shim() {
    if kvm_available() {
        page_fault_on(Vmm::Shim);
    }
}

#[test]
fn panic_exits_nonzero_with_message() {
    let b = boot("ktest", Vmm::Qemu, 1, &["crash=panic"], LIMIT);
    b.expect("ferrix: core 0 panicked")
        .expect("ktest: deliberate panic")
        .expect_exit(exit::PANIC);
}

#[test]
fn panic_exits_nonzero_under_shim() {
    if kvm_available() {
        let b = boot("ktest", Vmm::Shim, 1, &["crash=panic"], LIMIT);
        b.expect("ktest: deliberate panic").expect_exit(exit::PANIC);
    }
}

#[test]
fn stack_overflow_hits_the_guard_page() {
    let b = boot("ktest", Vmm::Qemu, 1, &["crash=stack-overflow"], LIMIT);
    b.expect("exception 14 (page fault)")
        .expect("stack overflow")
        .expect_exit(exit::EXCEPTION);
}

#[test]
fn hang_is_stopped_by_timeout_under_qemu() {
    let b = boot(
        "ktest",
        Vmm::Qemu,
        1,
        &["crash=hang"],
        Duration::from_secs(3),
    );
    assert!(b.timed_out, "not timed out:\n{}", b.console);
    assert_eq!(b.exit_code, exit::HOST_TIMEOUT as i32);
}

#[test]
fn hang_is_stopped_by_timeout_under_shim() {
    if kvm_available() {
        let b = boot(
            "ktest",
            Vmm::Shim,
            2,
            &["crash=hang"],
            Duration::from_secs(3),
        );
        assert!(b.timed_out, "not timed out:\n{}", b.console);
        assert_eq!(b.exit_code, exit::HOST_TIMEOUT as i32);
    }
}
