//! Kernel-timestamp state of one TCP or UDP connection: the sampled requests in flight with
//! the `OPT_ID` id of the send call that carried their last byte ([`super::stamps`]), TX stamps
//! merged in from the error queue, RX stamps from the receive that completed each response,
//! and the choice per sample between kernel and user-space times once its stamps are complete
//! (or after [`TX_STAMP_GRACE`]).

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::options::StampKind;
use super::sockopt::{self, ErrQueue};
use super::stamps::{self, KStamp, NoKernel, RxTracker, TxTracker};

/// One finished latency sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// User-space send time (orders samples).
    pub sent: Instant,
    pub latency_us: f64,
    /// Which stamps timed it.
    pub kind: StampKind,
    /// Kernel stamps were wanted but could not be used for this sample.
    pub fallback: Option<NoKernel>,
}

/// How long a completed sample waits for its TX stamp (a NIC may report it after the reply
/// arrived) before it falls back to user-space stamps.
pub const TX_STAMP_GRACE: Duration = Duration::from_millis(20);

/// Samples after which a connection that never got a kernel TX stamp turns kernel stamps off.
/// (Missing RX stamps do not count: the kernel stamps received packets only while some socket
/// asks for it, and switches that on and off asynchronously; see [`sockopt::rx_stamp_keeper`].)
pub const KERNEL_PROBATION: u64 = 32;

/// Sampled requests whose stamps are tracked at most (older ones were never answered).
const MAX_RECORDS: usize = 4096;

/// A sampled request's stamps, from send to finalisation.
#[derive(Debug)]
struct Rec {
    token: u64,
    sent: Instant,
    /// The `OPT_ID` id (64-bit offset) of the send call that carried its last byte.
    key: Option<u64>,
    tx: KStamp,
    /// User-space receive time and the kernel RX stamp, once the response is complete.
    rx: Option<(Instant, Option<KStamp>)>,
}

/// Kernel-timestamp state of a TCP or UDP connection (see [`super::stamps`]).
#[derive(Debug)]
pub struct Kernel {
    tx: TxTracker<u64>,
    /// Receives and their stamps (TCP).
    pub rx: RxTracker,
    /// TCP: bytes of complete responses so far.
    pub consumed: u64,
    recs: VecDeque<Rec>,
    next_token: u64,
    /// Control-message buffer for `recvmsg`.
    pub cmsg: Vec<u8>,
    /// Something was sent since the error queue was last found empty.
    sent_since_drain: bool,
    /// Samples emitted.
    pub finalized: u64,
    kernel_used: u64,
    /// TX stamps that matched a sampled request.
    pub tx_seen: u64,
    /// Ids are no longer certain (a UDP send failed): match nothing more, and turn kernel
    /// stamps off at the next poll, for this reason.
    pub poisoned: Option<String>,
}

impl Default for Kernel {
    fn default() -> Self {
        Kernel::new()
    }
}

impl Kernel {
    pub fn new() -> Kernel {
        Kernel {
            tx: TxTracker::default(),
            rx: RxTracker::default(),
            consumed: 0,
            recs: VecDeque::new(),
            next_token: 0,
            cmsg: sockopt::cmsg_buffer(),
            sent_since_drain: false,
            finalized: 0,
            kernel_used: 0,
            tx_seen: 0,
            poisoned: None,
        }
    }

    /// Forget every TX stamp and emit all answered samples now (kernel stamps are being
    /// turned off): they fall back to user-space times.
    pub fn abandon(&mut self, done: &mut impl FnMut(Sample)) {
        for r in &mut self.recs {
            r.key = None;
            r.tx = KStamp::default();
        }
        self.finalize(Instant::now(), true, done);
    }

    /// Stop matching stamps at once; the connection turns them off at its next poll.
    pub fn poison(&mut self, why: String) {
        for r in &mut self.recs {
            r.key = None;
            r.tx = KStamp::default();
        }
        self.poisoned.get_or_insert(why);
    }

    /// A request of `len` stream units is appended; returns its token when sampled.
    pub fn push(&mut self, len: u64, sampled: bool, sent: Instant) -> Option<u64> {
        let token = sampled.then(|| {
            let t = self.next_token;
            self.next_token += 1;
            if self.recs.len() >= MAX_RECORDS {
                self.recs.pop_front();
            }
            self.recs.push_back(Rec {
                token: t,
                sent,
                key: None,
                tx: KStamp::default(),
                rx: None,
            });
            t
        });
        self.tx.push(len, token);
        token
    }

    /// A send call took `n` units.
    pub fn wrote(&mut self, n: u64) {
        if n == 0 || self.poisoned.is_some() {
            return;
        }
        self.sent_since_drain = true;
        for (token, key) in self.tx.wrote(n) {
            if let Some(r) = self.recs.iter_mut().find(|r| r.token == token) {
                r.key = Some(key);
            }
        }
    }

    pub fn responded(&mut self, token: u64, at: Instant, rx: Option<KStamp>) -> bool {
        match self.recs.iter_mut().find(|r| r.token == token) {
            Some(r) => {
                r.rx = Some((at, rx));
                true
            }
            None => false,
        }
    }

    /// Read the error queue dry, merging TX stamps into the records they belong to.
    pub fn drain<F: AsRawFd>(&mut self, fd: &F) -> io::Result<()> {
        let awaiting = self.recs.iter().any(|r| r.key.is_some() && r.tx.is_empty());
        if !(self.sent_since_drain || awaiting) {
            return Ok(());
        }
        loop {
            match sockopt::read_errqueue(fd, &mut self.cmsg)? {
                ErrQueue::Empty => break,
                ErrQueue::Other => {}
                ErrQueue::Tx(id, s) => {
                    let Some(off) = self.tx.unwrap(id).filter(|_| self.poisoned.is_none()) else {
                        continue;
                    };
                    for r in self.recs.iter_mut().filter(|r| r.key == Some(off)) {
                        r.tx.merge(s);
                        self.tx_seen += 1;
                    }
                }
            }
        }
        self.sent_since_drain = false;
        Ok(())
    }

    /// Emit the samples whose stamps are complete (or waited long enough).
    pub fn finalize(&mut self, now: Instant, force: bool, done: &mut impl FnMut(Sample)) {
        let mut i = 0;
        while i < self.recs.len() {
            let r = &self.recs[i];
            let Some((rx_at, rx)) = r.rx else {
                i += 1;
                continue;
            };
            let user = rx_at.duration_since(r.sent);
            let res = stamps::pick(r.tx, rx, user.as_nanos() as f64);
            let best = match rx {
                Some(s) if s.hw.is_some() => StampKind::Hardware,
                _ => StampKind::KernelSoftware,
            };
            let ready = force
                || matches!(res, Ok((_, k)) if k == best)
                || res == Err(NoKernel::MissingRx)
                || now.duration_since(rx_at) > TX_STAMP_GRACE;
            if !ready {
                i += 1;
                continue;
            }
            let sample = match res {
                Ok((latency_us, kind)) => {
                    self.kernel_used += 1;
                    Sample {
                        sent: r.sent,
                        latency_us,
                        kind,
                        fallback: None,
                    }
                }
                Err(e) => Sample {
                    sent: r.sent,
                    latency_us: user.as_secs_f64() * 1e6,
                    kind: StampKind::Software,
                    fallback: Some(e),
                },
            };
            self.finalized += 1;
            self.recs.remove(i);
            done(sample);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(k: &mut Kernel, now: Instant, force: bool) -> Vec<Sample> {
        let mut out = Vec::new();
        k.finalize(now, force, &mut |s| out.push(s));
        out
    }

    #[test]
    fn samples_wait_for_their_tx_stamp_then_fall_back() {
        let t0 = Instant::now();
        let mut k = Kernel::new();
        // Two sampled 10-byte requests written in one call: both carry id 19.
        let a = k.push(10, true, t0).unwrap();
        let b = k.push(10, true, t0).unwrap();
        k.wrote(20);
        assert!(k.recs.iter().all(|r| r.key == Some(19)));
        let rx_at = t0 + Duration::from_micros(50);
        assert!(k.responded(a, rx_at, Some(KStamp::sw(30_000))));
        assert!(k.responded(b, rx_at, Some(KStamp::sw(40_000))));
        // No TX stamp yet: nothing is final within the grace period.
        assert!(collect(&mut k, rx_at, false).is_empty());
        // The stamp arrives: both samples are kernel-timed.
        for r in k.recs.iter_mut().filter(|r| r.key == Some(19)) {
            r.tx.merge(KStamp::sw(10_000));
        }
        let s = collect(&mut k, rx_at, false);
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].latency_us, s[0].kind),
            (20.0, StampKind::KernelSoftware)
        );
        assert_eq!(
            (s[1].latency_us, s[1].kind),
            (30.0, StampKind::KernelSoftware)
        );
        // A third sample whose stamp never comes falls back after the grace period.
        let c = k.push(10, true, t0).unwrap();
        k.wrote(10);
        assert!(k.responded(c, rx_at, Some(KStamp::sw(30_000))));
        let late = rx_at + TX_STAMP_GRACE + Duration::from_millis(1);
        let s = collect(&mut k, late, false);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].kind, StampKind::Software);
        assert_eq!(s[0].fallback, Some(NoKernel::MissingTx));
        assert!((s[0].latency_us - 50.0).abs() < 1e-9);
    }

    #[test]
    fn missing_rx_stamp_falls_back_at_once_and_poison_stops_matching() {
        let t0 = Instant::now();
        let mut k = Kernel::new();
        let a = k.push(1, true, t0).unwrap();
        k.wrote(1);
        assert!(k.responded(a, t0 + Duration::from_micros(5), None));
        let s = collect(&mut k, t0, false);
        assert_eq!(s[0].fallback, Some(NoKernel::MissingRx));
        // After a failed UDP send ids are uncertain: no key is assigned any more.
        let b = k.push(1, true, t0).unwrap();
        k.poison("test".into());
        k.wrote(1);
        assert!(k.recs.iter().all(|r| r.key.is_none()));
        assert!(k.responded(b, t0, Some(KStamp::sw(1))));
        let s = collect(&mut k, t0, true);
        assert_eq!(s[0].fallback, Some(NoKernel::MissingTx));
    }
}
