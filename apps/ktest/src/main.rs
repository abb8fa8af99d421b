//! ktest: runs the kernel's in-guest tests (and this app's own) and exits 0 when all pass,
//! `exit::TEST_FAILED` otherwise. Arguments:
//! * `filter=SUBSTRING`: run only tests whose name contains it;
//! * `arp=OWN_IP,PEER_IP`: also run the NIC test (ARP round trip with a peer on the link);
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

fn args_reach_the_app() -> TestResult {
    ensure!(ferrix::args().all(|a| !a.starts_with("ferrix.")));
    Ok(())
}

/// Tests that need a NIC and a peer that answers ARP (run with `arp=OWN_IP,PEER_IP`).
const NIC_TESTS: &[TestCase] = &[test_case!(nic_arp_roundtrip)];

fn parse_ip(s: &str) -> Option<[u8; 4]> {
    let mut ip = [0u8; 4];
    let mut parts = s.split('.');
    for b in ip.iter_mut() {
        *b = parts.next()?.parse().ok()?;
    }
    parts.next().is_none().then_some(ip)
}

/// The `arp=OWN,PEER` argument.
fn arp_arg() -> Option<([u8; 4], [u8; 4])> {
    let v = ferrix::args().find_map(|a| a.strip_prefix("arp="))?;
    let (own, peer) = v.split_once(',')?;
    Some((parse_ip(own)?, parse_ip(peer)?))
}

/// Asks the peer for its MAC with a hand-built ARP request and waits for the reply:
/// exercises the driver's TX and RX rings without the network stack.
fn nic_arp_roundtrip() -> TestResult {
    let (own, peer) = arp_arg().ok_or("needs arp=OWN_IP,PEER_IP")?;
    let info = ferrix::net::info().ok_or("no NIC")?;
    // The reply may arrive on any queue (the device steers), so poll them all.
    let mut qs: alloc::vec::Vec<_> = (0..info.queue_pairs)
        .filter_map(ferrix::net::take_queue_of)
        .collect();
    ensure!(qs.len() == info.queue_pairs, "queue pairs already taken");
    let mut frame = alloc::vec::Vec::with_capacity(60);
    frame.extend_from_slice(&[0xff; 6]);
    frame.extend_from_slice(&info.mac);
    frame.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    frame.extend_from_slice(&info.mac);
    frame.extend_from_slice(&own);
    frame.extend_from_slice(&[0; 6]);
    frame.extend_from_slice(&peer);
    frame.resize(60, 0);
    let q0 = &mut qs[0];
    let mut b = q0.alloc().ok_or("no buffer")?;
    ensure!(b.set_len(frame.len()));
    b.data_mut().copy_from_slice(&frame);
    let mut tx = alloc::vec![b];
    ensure!(q0.tx_burst(&mut tx) == 1, "transmit refused");
    let deadline = ferrix::time::now_ns() + 5_000_000_000;
    let mut rx = alloc::vec::Vec::new();
    while ferrix::time::now_ns() < deadline {
        for q in qs.iter_mut() {
            q.rx_burst(&mut rx, 32);
            for p in rx.drain(..) {
                let d = p.data();
                let is_reply = d.len() >= 42
                    && d[12..14] == [0x08, 0x06]
                    && d[20..22] == [0, 2]
                    && d[28..32] == peer;
                q.free(p);
                if is_reply {
                    ensure!(qs[0].stats().tx_packets == 1, "stats {:?}", qs[0].stats());
                    return Ok(());
                }
            }
        }
    }
    let stats: alloc::vec::Vec<_> = qs.iter().map(|q| q.stats()).collect();
    Err(alloc::format!(
        "no ARP reply from {peer:?} within 5 s (stats {stats:?})"
    ))
}

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
    let groups: &[&[TestCase]] = if arp_arg().is_some() {
        &[ferrix::selftest::TESTS, APP_TESTS, NIC_TESTS]
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
