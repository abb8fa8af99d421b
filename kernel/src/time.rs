//! Time: the TSC as monotonic clock (calibrated once against PIT channel 2), busy-wait delays,
//! and the per-core APIC timer (calibrated against the TSC) with a registered callback.
//!
//! Conversions are pure and host-tested; the hardware parts are guest-only.

/// Converts TSC ticks to nanoseconds at `hz` (no overflow for any u64 tick count).
pub fn ticks_to_ns(ticks: u64, hz: u64) -> u64 {
    if hz == 0 {
        return 0;
    }
    (u128::from(ticks) * 1_000_000_000 / u128::from(hz)).min(u128::from(u64::MAX)) as u64
}

/// Converts nanoseconds to TSC ticks at `hz`.
pub fn ns_to_ticks(ns: u64, hz: u64) -> u64 {
    (u128::from(ns) * u128::from(hz) / 1_000_000_000).min(u128::from(u64::MAX)) as u64
}

/// Fixed-point factor for [`ticks_to_ns_fast`]: nanoseconds per tick in 32.32 format.
pub fn ns_per_tick_q32(hz: u64) -> u64 {
    if hz == 0 {
        return 0;
    }
    ((1_000_000_000u128 << 32) / u128::from(hz)).min(u128::from(u64::MAX)) as u64
}

/// TSC ticks to nanoseconds with a precomputed [`ns_per_tick_q32`] factor: one 64x64->128
/// multiplication and a shift, no division (the clock is read on every poll of the data path).
#[inline]
pub fn ticks_to_ns_fast(ticks: u64, q32: u64) -> u64 {
    ((u128::from(ticks) * u128::from(q32)) >> 32).min(u128::from(u64::MAX)) as u64
}

/// PIT input clock (Hz).
pub const PIT_HZ: u64 = 1_193_182;

/// TSC frequency from a PIT measurement: `tsc_delta` ticks while the PIT counted `pit_count`.
pub fn tsc_hz_from_pit(tsc_delta: u64, pit_count: u64) -> u64 {
    if pit_count == 0 {
        return 0;
    }
    (u128::from(tsc_delta) * u128::from(PIT_HZ) / u128::from(pit_count)) as u64
}

#[cfg(target_os = "none")]
pub use imp::*;

#[cfg(target_os = "none")]
mod imp {
    use super::*;
    use crate::arch::apic;
    use crate::arch::cpu::{inb, outb, rdtsc};
    use crate::arch::vectors::TIMER_VECTOR;
    use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    /// Assumed TSC rate when calibration is impossible (no PIT): 1 GHz.
    const FALLBACK_HZ: u64 = 1_000_000_000;
    /// Calibration window: 10 ms of PIT ticks.
    const PIT_COUNT: u16 = 11_932;

    static TSC_HZ: AtomicU64 = AtomicU64::new(FALLBACK_HZ);
    /// `ns_per_tick_q32(TSC_HZ)`: 1 ns per tick (1 GHz) until calibrated.
    static NS_PER_TICK_Q32: AtomicU64 = AtomicU64::new(1 << 32);
    static TSC_BASE: AtomicU64 = AtomicU64::new(0);
    /// APIC timer ticks (divide 16) per millisecond.
    static APIC_TICKS_PER_MS: AtomicU64 = AtomicU64::new(0);
    /// Timer callback (a `fn(usize)` stored as usize; 0 = none).
    static TIMER_CB: AtomicUsize = AtomicUsize::new(0);
    /// Cores whose APIC timer runs periodically (`start_periodic`).
    static PERIODIC: [core::sync::atomic::AtomicBool; crate::percpu::MAX_CPUS] =
        [const { core::sync::atomic::AtomicBool::new(false) }; crate::percpu::MAX_CPUS];

    /// Measures the TSC against PIT channel 2 and the APIC timer against the TSC. Boot CPU,
    /// after the APIC is enabled. Returns false when no PIT answered (fallback rate used).
    pub fn calibrate() -> bool {
        TSC_BASE.store(crate::arch::boot::boot_tsc(), Ordering::Relaxed);
        let ok = match measure_tsc_with_pit() {
            Some(hz) => {
                TSC_HZ.store(hz, Ordering::Relaxed);
                NS_PER_TICK_Q32.store(ns_per_tick_q32(hz), Ordering::Relaxed);
                true
            }
            None => false,
        };
        // APIC timer: count down from the maximum for 2 ms of TSC time.
        apic::timer_calibration_start(u32::MAX);
        delay_ns(2_000_000);
        let elapsed = u64::from(u32::MAX - apic::timer_current());
        apic::timer_stop();
        APIC_TICKS_PER_MS.store((elapsed / 2).max(1), Ordering::Relaxed);
        ok
    }

    /// Counts PIT channel 0 down (mode 0, latched reads; no IRQ reaches the CPU: LINT0 and
    /// the IOAPIC are masked) and measures the TSC over [`PIT_COUNT`] PIT ticks. Channel 0 is
    /// used instead of channel 2 because microvm has no port 0x61 (speaker gate).
    fn measure_tsc_with_pit() -> Option<u64> {
        fn read_counter() -> u16 {
            // SAFETY: latching and reading channel 0's count has no effect beyond the PIT.
            unsafe {
                outb(0x43, 0x00);
                let lo = inb(0x40);
                let hi = inb(0x40);
                u16::from_le_bytes([lo, hi])
            }
        }
        // SAFETY: ferrix owns the PIT (it uses no PIT interrupts); mode 0, lo/hi, binary.
        unsafe {
            outb(0x43, 0b0011_0000);
            outb(0x40, 0xff);
            outb(0x40, 0xff);
        }
        let c0 = read_counter();
        let t0 = rdtsc();
        if c0 < PIT_COUNT + 1000 {
            return None; // no PIT (floating bus reads) or it did not load the count
        }
        let mut prev = c0;
        loop {
            let c = read_counter();
            let t1 = rdtsc();
            if c > prev || t1 - t0 > 100_000_000_000 {
                return None; // counter wrapped or never moved: no usable PIT
            }
            prev = c;
            if c0 - c >= PIT_COUNT {
                let hz = tsc_hz_from_pit(t1 - t0, u64::from(c0 - c));
                return (hz > 1_000_000).then_some(hz);
            }
        }
    }

    /// TSC frequency (Hz).
    pub fn tsc_hz() -> u64 {
        TSC_HZ.load(Ordering::Relaxed)
    }

    /// Nanoseconds since the PVH entry (monotonic on each core; TSCs are synchronised by the VMM).
    pub fn now_ns() -> u64 {
        ticks_to_ns_fast(
            rdtsc().saturating_sub(TSC_BASE.load(Ordering::Relaxed)),
            NS_PER_TICK_Q32.load(Ordering::Relaxed),
        )
    }

    /// Busy-waits `ns` nanoseconds.
    pub fn delay_ns(ns: u64) {
        let end = rdtsc().saturating_add(ns_to_ticks(ns, tsc_hz()));
        while rdtsc() < end {
            core::hint::spin_loop();
        }
    }

    /// Starts this core's periodic APIC timer at `hz` interrupts per second, calling `cb` with
    /// the core id from the interrupt handler. The callback is shared by all cores.
    pub fn start_periodic(hz: u32, cb: fn(usize)) {
        TIMER_CB.store(cb as usize, Ordering::Release);
        let per_ms = APIC_TICKS_PER_MS.load(Ordering::Relaxed);
        let count = (per_ms * 1000 / u64::from(hz.max(1))).clamp(1, u64::from(u32::MAX)) as u32;
        apic::timer_start(TIMER_VECTOR, count, true);
        if let Some(p) = PERIODIC.get(crate::percpu::core_id()) {
            p.store(true, Ordering::Relaxed);
        }
    }

    /// Stops this core's APIC timer.
    pub fn stop() {
        apic::timer_stop();
        if let Some(p) = PERIODIC.get(crate::percpu::core_id()) {
            p.store(false, Ordering::Relaxed);
        }
    }

    /// Halts this core until an interrupt, at most about `ns` later: a one-shot APIC timer
    /// wakes it, unless its timer already runs periodically (then the next tick does).
    /// Returns with interrupts enabled (`sti; hlt`), after the waking interrupt's handler ran.
    pub fn halt_for_ns(ns: u64) {
        let periodic = PERIODIC
            .get(crate::percpu::core_id())
            .is_some_and(|p| p.load(Ordering::Relaxed));
        if !periodic {
            let per_ms = APIC_TICKS_PER_MS.load(Ordering::Relaxed);
            let count = (per_ms.saturating_mul(ns) / 1_000_000).clamp(1, u64::from(u32::MAX));
            apic::timer_start(TIMER_VECTOR, count as u32, false);
        }
        crate::arch::cpu::wait_for_interrupt();
    }

    pub(crate) fn on_timer_interrupt() {
        let core = crate::percpu::try_this().map_or(0, |c| {
            c.timer_ticks.fetch_add(1, Ordering::Relaxed);
            c.id
        });
        let cb = TIMER_CB.load(Ordering::Acquire);
        if cb != 0 {
            // SAFETY: TIMER_CB only ever holds a `fn(usize)` stored by `start_periodic`.
            let f: fn(usize) = unsafe { core::mem::transmute::<usize, fn(usize)>(cb) };
            f(core);
        }
        crate::net::report::on_tick(core);
    }

    /// Timer interrupts taken by core `id`.
    pub fn timer_ticks(id: usize) -> u64 {
        crate::percpu::get(id).map_or(0, |c| c.timer_ticks.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(ticks_to_ns(3_000_000_000, 3_000_000_000), 1_000_000_000);
        assert_eq!(ns_to_ticks(1_000, 2_500_000_000), 2_500);
        assert_eq!(ticks_to_ns(u64::MAX, 1), u64::MAX);
        assert_eq!(ticks_to_ns(5, 0), 0);
    }

    #[test]
    fn fast_conversion_matches_division() {
        for hz in [1_000_000_000u64, 2_399_987_000, 3_000_000_000, 1_193_182] {
            let q = ns_per_tick_q32(hz);
            for ticks in [0u64, 1, 12_345, 1 << 40, 987_654_321_000] {
                let exact = ticks_to_ns(ticks, hz);
                let fast = ticks_to_ns_fast(ticks, q);
                // Truncating the factor loses at most 1 ns per 2^32 ns (about 4 s) plus 1.
                assert!(
                    exact.abs_diff(fast) <= exact / (1 << 32) + 1,
                    "{hz} {ticks}: {exact} vs {fast}"
                );
            }
        }
        assert_eq!(ticks_to_ns_fast(5, ns_per_tick_q32(1_000_000_000)), 5);
    }

    #[test]
    fn pit_calibration_math() {
        // 10 ms of PIT ticks at a 2 GHz TSC is 20 M TSC ticks.
        let pit = 11_932;
        let tsc = 2_000_000_000u64 * pit / PIT_HZ;
        let hz = tsc_hz_from_pit(tsc, pit);
        assert!((1_999_000_000..=2_001_000_000).contains(&hz), "{hz}");
        assert_eq!(tsc_hz_from_pit(1, 0), 0);
    }
}
