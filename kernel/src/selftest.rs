//! The kernel's in-guest tests: they check the live machine state (page tables, heap, DMA,
//! clock, APIC timer, IPIs, per-CPU data) from inside a booted image. Run by `apps/ktest`.

use crate::test::{TestCase, TestResult};
use crate::{ensure, test_case};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

/// All kernel self-tests.
pub const TESTS: &[TestCase] = &[
    test_case!(null_page_unmapped),
    test_case!(kernel_identity_mapped),
    test_case!(boot_stack_guard_unmapped),
    test_case!(interrupt_stack_guards_unmapped),
    test_case!(heap_alloc_and_free),
    test_case!(dma_alloc_aligned_and_usable),
    test_case!(frames_contiguous),
    test_case!(clock_monotonic_and_calibrated),
    test_case!(apic_timer_ticks),
    test_case!(ipi_reaches_every_core),
    test_case!(percpu_ids_distinct),
    test_case!(cmdline_has_cpu_count),
];

fn null_page_unmapped() -> TestResult {
    ensure!(
        crate::mem::kernel::translate(0).is_none(),
        "page 0 is mapped"
    );
    ensure!(crate::mem::kernel::translate(0xfff).is_none());
    ensure!(crate::mem::kernel::translate(0x1000) == Some(0x1000));
    Ok(())
}

fn kernel_identity_mapped() -> TestResult {
    let f = kernel_identity_mapped as *const () as u64;
    ensure!(
        crate::mem::kernel::translate(f) == Some(f),
        "text at {f:#x} not identity-mapped"
    );
    let top = crate::mem::kernel::ram().map_or(0, |r| r.top());
    ensure!(
        crate::mem::kernel::translate(top - 8) == Some(top - 8),
        "end of RAM not mapped"
    );
    ensure!(
        crate::mem::kernel::translate(top + (2 << 20)).is_none(),
        "memory above RAM is mapped"
    );
    Ok(())
}

fn boot_stack_guard_unmapped() -> TestResult {
    let g = crate::arch::boot::boot_stack_guard();
    ensure!(
        crate::mem::kernel::translate(g).is_none(),
        "guard page {g:#x} is mapped"
    );
    ensure!(
        crate::mem::kernel::translate(g + 4096).is_some(),
        "stack above the guard is unmapped"
    );
    Ok(())
}

fn interrupt_stack_guards_unmapped() -> TestResult {
    use crate::arch::gdt::IST_COUNT;
    use crate::start::IST_STACK_SIZE;
    for c in 0..crate::cpus() {
        let ist = crate::percpu::get(c).ok_or("core not up")?.tss.ist;
        for (i, &top) in ist.iter().take(IST_COUNT).enumerate() {
            let guard = top - IST_STACK_SIZE as u64 - 4096;
            ensure!(
                crate::mem::kernel::translate(top - 8).is_some(),
                "core {c} IST{} top unmapped",
                i + 1
            );
            ensure!(
                crate::mem::kernel::translate(guard).is_none(),
                "core {c} IST{} guard {guard:#x} mapped",
                i + 1
            );
        }
    }
    Ok(())
}

fn heap_alloc_and_free() -> TestResult {
    let (used0, _) = crate::mem::kernel::heap_usage();
    let mut v: Vec<u64> = Vec::new();
    for i in 0..10_000 {
        v.push(i * 3);
    }
    ensure!(v.iter().sum::<u64>() == 3 * 10_000 * 9_999 / 2);
    let big = alloc::vec![0xa5u8; 1 << 20];
    ensure!(big.iter().all(|&b| b == 0xa5));
    drop(big);
    drop(v);
    let (used1, free1) = crate::mem::kernel::heap_usage();
    ensure!(used1 == used0, "heap leaked: {used0} -> {used1}");
    ensure!(free1 > 0);
    Ok(())
}

fn dma_alloc_aligned_and_usable() -> TestResult {
    let a = crate::mem::kernel::dma_alloc(9000, 4096).ok_or("dma_alloc failed")?;
    ensure!(a % 4096 == 0, "{a:#x} not aligned");
    ensure!(crate::mem::kernel::translate(a) == Some(a));
    // SAFETY-free check through a slice would need unsafe; use the translate result only and
    // verify the region is RAM.
    ensure!(crate::mem::kernel::is_ram(a, 9000));
    let b = crate::mem::kernel::dma_alloc(64, 64).ok_or("dma_alloc failed")?;
    ensure!(b >= a + 9000 || b + 64 <= a, "overlap");
    ensure!(crate::mem::kernel::dma_free(a));
    ensure!(crate::mem::kernel::dma_free(b));
    ensure!(!crate::mem::kernel::dma_free(b), "double free accepted");
    Ok(())
}

fn frames_contiguous() -> TestResult {
    let p = crate::mem::kernel::alloc_frames(16, 1 << 16).ok_or("alloc_frames failed")?;
    ensure!(p % (1 << 16) == 0);
    ensure!(crate::mem::kernel::is_ram(p, 16 * 4096));
    Ok(())
}

fn clock_monotonic_and_calibrated() -> TestResult {
    let hz = crate::time::tsc_hz();
    ensure!(hz > 1_000_000, "TSC rate {hz} Hz is implausible");
    let t0 = crate::time::now_ns();
    crate::time::delay_ns(1_000_000);
    let t1 = crate::time::now_ns();
    ensure!(t1 >= t0 + 1_000_000, "1 ms delay took {} ns", t1 - t0);
    Ok(())
}

static TICKS_SEEN: AtomicU64 = AtomicU64::new(0);

fn count_tick(_core: usize) {
    TICKS_SEEN.fetch_add(1, Ordering::Relaxed);
}

fn apic_timer_ticks() -> TestResult {
    let core = crate::core_id();
    let before = crate::time::timer_ticks(core);
    crate::time::start_periodic(1000, count_tick);
    let deadline = crate::time::now_ns() + 5_000_000_000;
    while crate::time::timer_ticks(core) < before + 3 && crate::time::now_ns() < deadline {
        crate::arch::cpu::wait_for_interrupt();
    }
    crate::time::stop();
    let got = crate::time::timer_ticks(core) - before;
    ensure!(got >= 3, "only {got} timer interrupts in 5 s");
    ensure!(TICKS_SEEN.load(Ordering::Relaxed) >= 3, "callback not run");
    Ok(())
}

static IPI_CALLBACKS: AtomicU64 = AtomicU64::new(0);

fn on_test_ipi(_core: usize) {
    IPI_CALLBACKS.fetch_add(1, Ordering::Relaxed);
}

fn ipi_reaches_every_core() -> TestResult {
    let n = crate::cpus();
    let before: Vec<u64> = (0..n).map(crate::ipi::received).collect();
    let cb0 = IPI_CALLBACKS.load(Ordering::Relaxed);
    crate::ipi::set_handler(on_test_ipi);
    crate::ipi::send_all();
    let deadline = crate::time::now_ns() + 5_000_000_000;
    loop {
        // A core counts the IPI before it runs the callback: wait for both.
        let all = (0..n).all(|c| crate::ipi::received(c) > before[c]);
        if all && IPI_CALLBACKS.load(Ordering::Relaxed) >= cb0 + n as u64 {
            break;
        }
        ensure!(
            crate::time::now_ns() < deadline,
            "not every core got the IPI and ran the callback within 5 s"
        );
        core::hint::spin_loop();
    }
    ensure!(crate::ipi::send(0));
    ensure!(!crate::ipi::send(n), "send to a missing core succeeded");
    Ok(())
}

fn percpu_ids_distinct() -> TestResult {
    let n = crate::cpus();
    for c in 0..n {
        let p = crate::percpu::get(c).ok_or("core not up")?;
        ensure!(p.id == c, "core {c} has id {}", p.id);
        for d in 0..c {
            ensure!(
                crate::percpu::get(d).map(|q| q.apic_id) != Some(p.apic_id),
                "APIC id shared"
            );
        }
    }
    Ok(())
}

fn cmdline_has_cpu_count() -> TestResult {
    let want = alloc::format!("ferrix.cpus={}", crate::cpus());
    ensure!(
        crate::cmdline().contains(want.as_str()) || crate::cpus() == 1,
        "cmdline: {}",
        crate::cmdline()
    );
    Ok(())
}
