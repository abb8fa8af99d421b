//! The app SDK: declare an entry point with [`entry!`](crate::entry), choose the cores it runs
//! on with [`Cores`], read arguments, exit.
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! fn main(core: usize) {
//!     ferrix::println!("hello from core {core}");
//! }
//! ferrix::entry!(main);                                   // every core
//! // ferrix::entry!(main, cores = ferrix::Cores::First(1)); // only core 0
//! ```
//!
//! The entry runs once on each selected core with that core's id, interrupts enabled. When the
//! entry has returned on every selected core, the VM exits with code 0. Unselected cores idle
//! (and still serve IPIs). `ferrix::exit(code)` ends the VM at once from any core.

/// Which cores run the app's entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cores {
    /// Every core.
    All,
    /// Cores `0..n`.
    First(usize),
    /// The cores whose bit is set (bit i = core i).
    Mask(u64),
}

impl Cores {
    /// Whether core `core` of `n` runs the entry.
    pub fn contains(&self, core: usize, n: usize) -> bool {
        core < n
            && match *self {
                Cores::All => true,
                Cores::First(k) => core < k,
                Cores::Mask(m) => core < 64 && m & (1 << core) != 0,
            }
    }

    /// How many of `n` cores run the entry.
    pub fn count(&self, n: usize) -> usize {
        (0..n).filter(|&c| self.contains(c, n)).count()
    }
}

/// Declares the app's entry function `fn(core: usize)`, optionally with the cores to run on.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        $crate::entry!($main, cores = $crate::Cores::All);
    };
    ($main:path, cores = $cores:expr) => {
        #[unsafe(no_mangle)]
        pub fn __ferrix_app_entry(core: usize) {
            let f: fn(usize) = $main;
            f(core)
        }
        #[unsafe(no_mangle)]
        pub static __FERRIX_APP_CORES: $crate::Cores = $cores;
    };
}

#[cfg(target_os = "none")]
pub use imp::*;

#[cfg(target_os = "none")]
mod imp {
    use super::Cores;
    use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    unsafe extern "Rust" {
        fn __ferrix_app_entry(core: usize);
        static __FERRIX_APP_CORES: Cores;
    }

    static CPUS: AtomicUsize = AtomicUsize::new(1);
    static GO: AtomicBool = AtomicBool::new(false);
    static FINISHED: AtomicUsize = AtomicUsize::new(0);
    static BOOTSTATS: AtomicBool = AtomicBool::new(false);
    static NETSTATS: AtomicBool = AtomicBool::new(false);

    /// Number of cores running.
    pub fn cpus() -> usize {
        CPUS.load(Ordering::Acquire)
    }

    /// This core's id.
    pub fn core_id() -> usize {
        crate::percpu::core_id()
    }

    /// The full kernel command line.
    pub fn cmdline() -> &'static str {
        crate::mem::kernel::cmdline()
    }

    /// The app's arguments (command-line tokens that are not `ferrix.*` options).
    pub fn args() -> impl Iterator<Item = &'static str> {
        crate::cmdline::app_args(cmdline())
    }

    /// Parks this core for good (it still serves IPIs and timer interrupts).
    pub fn idle() -> ! {
        loop {
            crate::arch::cpu::wait_for_interrupt();
        }
    }

    /// Ends the VM with `code` (0 = success). Callable from any core.
    pub fn exit(code: u32) -> ! {
        crate::profile::report();
        // Only the first core to exit prints the statistics (and sends the final live record).
        crate::net::report::report_at_exit(NETSTATS.swap(false, Ordering::AcqRel));
        crate::net::cost::report();
        if BOOTSTATS.load(Ordering::Relaxed) {
            crate::println!("ferrix-bootstats: exit_tsc={}", crate::arch::cpu::rdtsc());
        }
        crate::arch::vmm::exit(code)
    }

    /// The value in `r`, or: prints `{app}: {error}` and ends the VM with 1 (an app's start-up
    /// checks: arguments, the network, ports).
    pub fn or_exit<T, E: core::fmt::Display>(app: &str, r: Result<T, E>) -> T {
        match r {
            Ok(v) => v,
            Err(e) => {
                crate::println!("{app}: {e}");
                exit(1)
            }
        }
    }

    /// Boot CPU: all cores are up; release them into the app.
    pub(crate) fn release(cpus: usize, bootstats: bool, netstats: bool) {
        NETSTATS.store(netstats, Ordering::Relaxed);
        CPUS.store(cpus, Ordering::Release);
        BOOTSTATS.store(bootstats, Ordering::Relaxed);
        GO.store(true, Ordering::Release);
    }

    /// Every core: wait for the release, run the entry if selected, then idle.
    pub(crate) fn run(core: usize) -> ! {
        while !GO.load(Ordering::Acquire) {
            core::hint::spin_loop();
        }
        let n = cpus();
        crate::profile::start_on_this_core();
        crate::net::report::start_live_on_this_core(crate::profile::enabled());
        // SAFETY: the app defines this static through `entry!`; it is immutable.
        let cores = unsafe { __FERRIX_APP_CORES };
        crate::arch::cpu::enable_interrupts();
        if cores.count(n) == 0 {
            crate::println!("ferrix: the app's core selection {cores:?} matches none of {n} cores");
            exit(ferrix_abi::exit::BOOT_FAILED);
        }
        if cores.contains(core, n) {
            if core == 0 && BOOTSTATS.load(Ordering::Relaxed) {
                crate::println!(
                    "ferrix-bootstats: start_tsc={} entry_tsc={} tsc_hz={}",
                    crate::arch::boot::boot_tsc(),
                    crate::arch::cpu::rdtsc(),
                    crate::time::tsc_hz()
                );
            }
            // SAFETY: defined by the app through `entry!` with this exact signature.
            unsafe { __ferrix_app_entry(core) };
            if FINISHED.fetch_add(1, Ordering::AcqRel) + 1 == cores.count(n) {
                exit(ferrix_abi::exit::SUCCESS);
            }
        }
        loop {
            crate::arch::cpu::wait_for_interrupt();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cores;

    #[test]
    fn core_selection() {
        assert_eq!(Cores::All.count(4), 4);
        assert!(Cores::First(2).contains(1, 4));
        assert!(!Cores::First(2).contains(2, 4));
        assert_eq!(Cores::First(8).count(4), 4);
        assert_eq!(Cores::Mask(0b1010).count(4), 2);
        assert!(!Cores::Mask(0b1010).contains(0, 4));
        assert!(!Cores::Mask(1 << 5).contains(5, 4));
        assert_eq!(Cores::Mask(0).count(4), 0);
    }
}
