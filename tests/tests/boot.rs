//! Boots the `hello` and `ktest` images under QEMU (TCG) and the ferrix shim (KVM) and checks
//! what every core printed and how the VM ended.

use ferrix_cli::Vmm;
use ferrix_tests::{boot, kvm_available};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

fn hello_on(vmm: Vmm, cpus: u32) {
    let b = boot("hello", vmm, cpus, &[], LIMIT);
    for core in 0..cpus {
        b.expect(&format!("hello from core {core} of {cpus}\n"));
    }
    b.expect(&format!(
        "ipi ring: {cpus}/{cpus} cores answered ({cpus} IPIs)"
    ))
    .expect_exit(0);
}

#[test]
fn hello_qemu_1_cpu() {
    hello_on(Vmm::Qemu, 1);
}

#[test]
fn hello_qemu_2_cpus() {
    hello_on(Vmm::Qemu, 2);
}

#[test]
fn hello_qemu_4_cpus() {
    hello_on(Vmm::Qemu, 4);
}

#[test]
fn hello_shim_1_cpu() {
    if kvm_available() {
        hello_on(Vmm::Shim, 1);
    }
}

#[test]
fn hello_shim_2_cpus() {
    if kvm_available() {
        hello_on(Vmm::Shim, 2);
    }
}

fn ktest_passes_on(vmm: Vmm, cpus: u32) {
    let b = boot("ktest", vmm, cpus, &[], LIMIT);
    let line = b
        .console
        .lines()
        .find(|l| l.ends_with(" failed") && l.contains(" passed, "))
        .unwrap_or_else(|| panic!("no summary line:\n{}", b.console));
    let passed: usize = line
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("count");
    assert!(passed >= 12, "too few in-guest tests ran: {line}");
    b.expect(" passed, 0 failed").expect_exit(0);
}

#[test]
fn guest_tests_pass_under_qemu_4_cpus() {
    ktest_passes_on(Vmm::Qemu, 4);
}

#[test]
fn guest_tests_pass_under_shim_2_cpus() {
    if kvm_available() {
        ktest_passes_on(Vmm::Shim, 2);
    }
}

#[test]
fn guest_test_filter_runs_a_subset() {
    let b = boot("ktest", Vmm::Qemu, 1, &["filter=heap"], LIMIT);
    b.expect("test heap_alloc_and_free ... ok")
        .expect("1 passed, 0 failed")
        .expect_exit(0);
}

#[test]
fn sampling_profiler_names_guest_functions() {
    let b = boot("ktest", Vmm::Qemu, 2, &["ferrix.profile=20000"], LIMIT);
    b.expect("ferrix-profile: samples ").expect_exit(0);
    let syms =
        ferrix_cli::profile::Symbols::from_elf(&ferrix_tests::image("ktest")).expect("symbols");
    let (total, rows) = ferrix_cli::profile::by_function(&b.console, &syms);
    assert!(total > 0, "no samples:\n{}", b.console);
    assert!(
        rows.iter()
            .any(|(name, n)| *n > 0 && (name.starts_with("ferrix") || name.contains("ktest"))),
        "no sample mapped to a guest function: {rows:?}"
    );
}
