//! ktest: runs the kernel's in-guest tests (and this app's own) and exits 0 when all pass,
//! `exit::TEST_FAILED` otherwise. Arguments:
//! * `filter=SUBSTRING`: run only tests whose name contains it;
//! * `nic=slirp`: also run the NIC tests that need QEMU's user network (`--net user`);
//! * `crash=pagefault|panic|hang|stack-overflow`: misbehave on purpose, to test how the kernel
//!   and the VMMs report it.
#![no_std]
#![no_main]

extern crate alloc;

use ferrix::test::{TestCase, TestResult};
use ferrix::{ensure, println, test_case};

/// An address far above any guest RAM: never mapped.
const UNMAPPED: u64 = 0x10_0000_0000;

const APP_TESTS: &[TestCase] = &[test_case!(args_reach_the_app)];

/// Tests that need a NIC on QEMU's user network (run with the argument `nic=slirp`).
const SLIRP_TESTS: &[TestCase] = &[test_case!(nic_arp_to_slirp_gateway)];

/// Asks QEMU's slirp gateway (10.0.2.2) for its MAC with a hand-built ARP request from
/// 10.0.2.15 and waits for the reply: exercises the driver's TX and RX rings.
fn nic_arp_to_slirp_gateway() -> TestResult {
    let info = ferrix::net::info().ok_or("no NIC")?;
    let mut q = ferrix::net::take_queue().ok_or("no queue pair for this core")?;
    let mut frame = alloc::vec::Vec::with_capacity(60);
    frame.extend_from_slice(&[0xff; 6]);
    frame.extend_from_slice(&info.mac);
    frame.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    frame.extend_from_slice(&info.mac);
    frame.extend_from_slice(&[10, 0, 2, 15]);
    frame.extend_from_slice(&[0; 6]);
    frame.extend_from_slice(&[10, 0, 2, 2]);
    frame.resize(60, 0);
    let mut b = q.alloc().ok_or("no buffer")?;
    ensure!(b.set_len(frame.len()));
    b.data_mut().copy_from_slice(&frame);
    let mut tx = alloc::vec![b];
    ensure!(q.tx_burst(&mut tx) == 1, "transmit refused");
    let deadline = ferrix::time::now_ns() + 5_000_000_000;
    let mut rx = alloc::vec::Vec::new();
    while ferrix::time::now_ns() < deadline {
        q.rx_burst(&mut rx, 32);
        for p in rx.drain(..) {
            let d = p.data();
            let is_reply = d.len() >= 42
                && d[12..14] == [0x08, 0x06]
                && d[20..22] == [0, 2]
                && d[28..32] == [10, 0, 2, 2];
            q.free(p);
            if is_reply {
                let s = q.stats();
                ensure!(s.tx_packets == 1 && s.rx_packets >= 1, "stats {s:?}");
                return Ok(());
            }
        }
    }
    Err(alloc::format!(
        "no ARP reply from 10.0.2.2 within 5 s (stats {:?})",
        q.stats()
    ))
}

fn args_reach_the_app() -> TestResult {
    ensure!(ferrix::args().all(|a| !a.starts_with("ferrix.")));
    Ok(())
}

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    let buf = [depth; 64];
    core::hint::black_box(&buf);
    recurse(depth + 1) + buf[7]
}

fn crash(kind: &str) -> ! {
    match kind {
        "pagefault" => {
            println!("ktest: reading {UNMAPPED:#x}");
            let p = core::hint::black_box(UNMAPPED) as *const u64;
            #[allow(unsafe_code)]
            // SAFETY: deliberately unsound: this read must fault (the point of the test).
            let v = unsafe { p.read_volatile() };
            println!("ktest: read {v} from an unmapped address?!");
            ferrix::exit(1)
        }
        "panic" => panic!("ktest: deliberate panic"),
        "hang" => loop {
            core::hint::spin_loop();
        },
        "stack-overflow" => {
            let v = recurse(0);
            println!("ktest: recursion ended?! {v}");
            ferrix::exit(1)
        }
        other => {
            println!(
                "ktest: unknown crash kind {other:?} (pagefault, panic, hang, stack-overflow)"
            );
            ferrix::exit(2)
        }
    }
}

fn main(_core: usize) {
    let mut filter = None;
    for a in ferrix::args() {
        if let Some(kind) = a.strip_prefix("crash=") {
            crash(kind);
        } else if let Some(f) = a.strip_prefix("filter=") {
            filter = Some(f);
        }
    }
    let slirp = ferrix::args().any(|a| a == "nic=slirp");
    let groups: &[&[TestCase]] = if slirp {
        &[ferrix::selftest::TESTS, APP_TESTS, SLIRP_TESTS]
    } else {
        &[ferrix::selftest::TESTS, APP_TESTS]
    };
    let s = ferrix::test::run(groups, filter);
    ferrix::exit(if s.failed == 0 {
        ferrix::exit_code::SUCCESS
    } else {
        ferrix::exit_code::TEST_FAILED
    });
}

ferrix::entry!(main, cores = ferrix::Cores::First(1));
