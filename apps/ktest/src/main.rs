//! ktest: runs the kernel's in-guest tests (and this app's own) and exits 0 when all pass,
//! `exit::TEST_FAILED` otherwise. Arguments:
//! * `filter=SUBSTRING`: run only tests whose name contains it;
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
    let s = ferrix::test::run(&[ferrix::selftest::TESTS, APP_TESTS], filter);
    ferrix::exit(if s.failed == 0 {
        ferrix::exit_code::SUCCESS
    } else {
        ferrix::exit_code::TEST_FAILED
    });
}

ferrix::entry!(main, cores = ferrix::Cores::First(1));
