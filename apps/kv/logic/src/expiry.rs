//! Time and expiry: the clock the caller passes in, and the two protocols' expiry rules turned
//! into one absolute deadline (nanoseconds since boot) stored with each item.
//!
//! memcached's rule (protocol.txt): an exptime of 0 means never; up to 30 days (2,592,000 s) it
//! is relative seconds; above that it is an absolute Unix time; negative means already expired.
//! Redis's EX/PX/EXPIRE/PEXPIRE are relative seconds or milliseconds.

/// memcached's boundary between relative and absolute exptimes (`REALTIME_MAXDELTA`).
pub const REALTIME_MAXDELTA: i64 = 60 * 60 * 24 * 30;

const NS_PER_S: u64 = 1_000_000_000;
const NS_PER_MS: u64 = 1_000_000;

/// The time of a request: monotonic nanoseconds since boot plus the Unix time (seconds) at
/// boot, both supplied by the caller (the guest's clock, or a simulated one in tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Clock {
    /// Nanoseconds since boot (monotonic).
    pub now_ns: u64,
    /// Unix time in seconds at `now_ns == 0`.
    pub unix_at_boot: u64,
}

impl Clock {
    /// A clock at `now_ns` whose boot happened at Unix time `unix_at_boot`.
    pub const fn new(now_ns: u64, unix_at_boot: u64) -> Self {
        Self {
            now_ns,
            unix_at_boot,
        }
    }

    /// The current Unix time in seconds.
    pub fn unix_now(&self) -> u64 {
        self.unix_at_boot.saturating_add(self.now_ns / NS_PER_S)
    }

    /// The same clock `ns` later (tests and simulations).
    pub fn advanced(self, ns: u64) -> Self {
        Self {
            now_ns: self.now_ns.saturating_add(ns),
            ..self
        }
    }
}

/// When an item expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadline {
    /// Never.
    Never,
    /// At this many nanoseconds since boot (expired when `now_ns >= at`).
    At(u64),
}

impl Deadline {
    /// An already-expired deadline.
    pub const EXPIRED: Deadline = Deadline::At(0);

    /// Whether the deadline has passed at `now`.
    pub fn expired(self, now: Clock) -> bool {
        match self {
            Deadline::Never => false,
            Deadline::At(at) => now.now_ns >= at,
        }
    }

    /// memcached's exptime rule (see the module doc).
    pub fn from_memcached(exptime: i64, now: Clock) -> Deadline {
        if exptime == 0 {
            Deadline::Never
        } else if exptime < 0 {
            Deadline::EXPIRED
        } else if exptime <= REALTIME_MAXDELTA {
            Deadline::At(now.now_ns.saturating_add(exptime as u64 * NS_PER_S))
        } else {
            let unix = exptime as u64;
            if unix <= now.unix_at_boot {
                Deadline::EXPIRED
            } else {
                let since_boot = (unix - now.unix_at_boot).saturating_mul(NS_PER_S);
                // An absolute time in the past (or now) is expired at once.
                Deadline::At(since_boot.max(1))
            }
        }
    }

    /// A relative time in milliseconds from `now` (Redis PX / PEXPIRE with a positive value).
    pub fn after_ms(ms: u64, now: Clock) -> Deadline {
        Deadline::At(now.now_ns.saturating_add(ms.saturating_mul(NS_PER_MS)))
    }

    /// Nanoseconds left at `now` (`None` for [`Deadline::Never`], 0 when expired).
    pub fn remaining_ns(self, now: Clock) -> Option<u64> {
        match self {
            Deadline::Never => None,
            Deadline::At(at) => Some(at.saturating_sub(now.now_ns)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOT: u64 = 1_700_000_000;

    #[test]
    fn memcached_relative_absolute_and_negative() {
        let now = Clock::new(5 * NS_PER_S, BOOT);
        assert_eq!(Deadline::from_memcached(0, now), Deadline::Never);
        assert_eq!(Deadline::from_memcached(-1, now), Deadline::EXPIRED);
        assert_eq!(
            Deadline::from_memcached(10, now),
            Deadline::At(15 * NS_PER_S)
        );
        assert_eq!(
            Deadline::from_memcached(REALTIME_MAXDELTA, now),
            Deadline::At((5 + REALTIME_MAXDELTA as u64) * NS_PER_S)
        );
        // Above 30 days: absolute Unix time.
        let abs = (BOOT + 100) as i64;
        assert_eq!(
            Deadline::from_memcached(abs, now),
            Deadline::At(100 * NS_PER_S)
        );
        // An absolute time before boot: expired.
        assert!(Deadline::from_memcached(REALTIME_MAXDELTA + 1, now).expired(now));
    }

    #[test]
    fn expiry_and_remaining() {
        let now = Clock::new(0, BOOT);
        let d = Deadline::after_ms(1500, now);
        assert!(!d.expired(now));
        assert_eq!(d.remaining_ns(now), Some(1500 * NS_PER_MS));
        assert!(d.expired(now.advanced(1500 * NS_PER_MS)));
        assert_eq!(d.remaining_ns(now.advanced(2 * NS_PER_S)), Some(0));
        assert_eq!(Deadline::Never.remaining_ns(now), None);
        assert_eq!(now.advanced(3 * NS_PER_S).unix_now(), BOOT + 3);
    }
}
