//! Attributing kernel timestamps to requests and responses (thesis 4.5), as pure logic over
//! stream offsets so it can be tested without sockets.
//!
//! **TX.** With `SOF_TIMESTAMPING_OPT_ID` every send call is stamped once, and the stamp's id
//! (`ee_data`, 32 bits) names it: on a TCP socket the byte offset of the *last byte* that call
//! wrote (counted from where the option was set), on a UDP socket the datagram's index. A UDP
//! socket is therefore a stream whose unit is a datagram. [`TxTracker`] follows the stream:
//! requests are appended (`push`), send calls take bytes (`wrote`), and each request is
//! attributed to the send call that carried its last byte, so a request split over several
//! writes gets the stamp of the write that completed it, and several requests written by one
//! call share its stamp. A stamp matches only the exact id it was expected under: a lost stamp
//! leaves its requests without one (they fall back to user-space stamps), it never lends them
//! a neighbour's.
//!
//! **RX.** A `recvmsg` on a TCP socket carries one stamp (of the last segment it consumed).
//! [`RxTracker`] records the byte range each receive delivered; a response gets the stamp of
//! the receive that delivered its last byte, so a response split over several receives is
//! stamped when it completed, and several responses completed by one receive share its stamp.
//!
//! [`pick`] turns a request's two kernel stamps and its user-space interval into one latency:
//! hardware stamps when both ends have them, else kernel software stamps, and only if the
//! kernel interval lies within the user-space one (the kernel stamps are taken after the send
//! call starts and before the receive returns), which catches any mismatch.

use std::collections::VecDeque;

use super::options::StampKind;

/// The times one kernel timestamp message (or receive) carried, in ns: `sw` on
/// `CLOCK_REALTIME`, `hw` on the NIC's clock; `None` = not present.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KStamp {
    pub sw: Option<i64>,
    pub hw: Option<i64>,
}

impl KStamp {
    /// Software stamp only.
    pub fn sw(ns: i64) -> KStamp {
        KStamp {
            sw: Some(ns),
            hw: None,
        }
    }

    /// Fill in what `o` has and `self` lacks (a TX stamp may come as two messages, software
    /// and hardware, under the same id).
    pub fn merge(&mut self, o: KStamp) {
        self.sw = self.sw.or(o.sw);
        self.hw = self.hw.or(o.hw);
    }

    pub fn is_empty(&self) -> bool {
        self.sw.is_none() && self.hw.is_none()
    }
}

/// The 64-bit offset of a 32-bit stamp id: the largest offset below `written` (units handed to
/// the kernel so far) whose low 32 bits are `key`. `None` if no such offset exists.
pub fn unwrap_key(key: u32, written: u64) -> Option<u64> {
    let last = written.checked_sub(1)?;
    last.checked_sub(u64::from((last as u32).wrapping_sub(key)))
}

/// Which send call carried each sampled request's last unit (see the module doc).
#[derive(Debug)]
pub struct TxTracker<T> {
    /// End offset of everything appended (written or still buffered).
    appended: u64,
    /// Units handed to the kernel.
    written: u64,
    /// Tokens of requests whose last unit is not written yet: (offset of that unit, token).
    unwritten: VecDeque<(u64, T)>,
}

impl<T> Default for TxTracker<T> {
    fn default() -> Self {
        TxTracker {
            appended: 0,
            written: 0,
            unwritten: VecDeque::new(),
        }
    }
}

impl<T> TxTracker<T> {
    /// A request of `len` units was appended to the stream; `token` if it wants a TX stamp.
    pub fn push(&mut self, len: u64, token: Option<T>) {
        if len == 0 {
            return;
        }
        self.appended += len;
        if let Some(t) = token {
            self.unwritten.push_back((self.appended - 1, t));
        }
    }

    /// One send call handed `n` units to the kernel; returns the tokens whose last unit it
    /// carried, each with the stamp id (64-bit offset) that call's stamp will have.
    pub fn wrote(&mut self, n: u64) -> Vec<(T, u64)> {
        if n == 0 {
            return Vec::new();
        }
        self.written += n;
        let key = self.written - 1;
        let mut out = Vec::new();
        while self
            .unwritten
            .front()
            .is_some_and(|(last, _)| *last < self.written)
        {
            if let Some((_, t)) = self.unwritten.pop_front() {
                out.push((t, key));
            }
        }
        out
    }

    /// The 64-bit offset of a stamp id received now.
    pub fn unwrap(&self, key: u32) -> Option<u64> {
        unwrap_key(key, self.written)
    }

    /// Units handed to the kernel so far.
    pub fn written(&self) -> u64 {
        self.written
    }
}

/// Which receive delivered each response's last byte (see the module doc).
#[derive(Debug, Default)]
pub struct RxTracker {
    received: u64,
    /// (end offset, stamp) of receives not yet fully consumed by complete responses.
    chunks: VecDeque<(u64, KStamp)>,
}

impl RxTracker {
    /// One receive delivered `n` bytes, with `stamp` (empty if the receive carried none).
    pub fn on_recv(&mut self, n: u64, stamp: KStamp) {
        if n == 0 {
            return;
        }
        self.received += n;
        self.chunks.push_back((self.received, stamp));
    }

    /// The response that ends at stream offset `end` (exclusive) is complete: the stamp of the
    /// receive that delivered its last byte. Responses must complete in stream order.
    pub fn complete(&mut self, end: u64) -> Option<KStamp> {
        let last = end.checked_sub(1)?;
        while self.chunks.front().is_some_and(|(e, _)| *e <= last) {
            self.chunks.pop_front();
        }
        self.chunks
            .front()
            .map(|(_, s)| *s)
            .filter(|s| !s.is_empty())
    }
}

/// Attribute one TCP connection's stamps (the trackers over whole arrays, for tests and
/// offline use): `requests` and `responses` are lengths in stream order, `writes` the bytes
/// each send call took, `tx_stamps` the error-queue stamps (id, times) in arrival order,
/// `recvs` the bytes and stamp of each receive. Returns per request (TX stamp, RX stamp of its
/// response); all requests are taken as sampled.
pub fn attribute_stream(
    requests: &[u64],
    writes: &[u64],
    tx_stamps: &[(u32, KStamp)],
    responses: &[u64],
    recvs: &[(u64, KStamp)],
) -> Vec<(Option<KStamp>, Option<KStamp>)> {
    let mut tx = TxTracker::default();
    for (i, len) in requests.iter().enumerate() {
        tx.push(*len, Some(i));
    }
    let mut keys = vec![None; requests.len()];
    let mut out = vec![(None, None); requests.len()];
    let mut stamps = tx_stamps.iter().peekable();
    for n in writes {
        for (i, key) in tx.wrote(*n) {
            keys[i] = Some(key);
        }
        // Stamps of the writes so far (they cannot refer to later writes).
        while let Some((k, s)) = stamps.peek() {
            let Some(off) = tx.unwrap(*k) else { break };
            for (i, key) in keys.iter().enumerate() {
                if *key == Some(off) {
                    out[i].0.get_or_insert_with(KStamp::default).merge(*s);
                }
            }
            stamps.next();
        }
    }
    let mut rx = RxTracker::default();
    let (mut consumed, mut resp) = (0u64, 0usize);
    for (n, s) in recvs {
        rx.on_recv(*n, *s);
        while let Some(len) = responses.get(resp) {
            if consumed + len > rx.received {
                break;
            }
            consumed += len;
            if let Some(o) = out.get_mut(resp) {
                o.1 = rx.complete(consumed);
            }
            resp += 1;
        }
    }
    out
}

/// Why a sample could not use kernel stamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoKernel {
    /// No TX stamp of a kind the RX stamp has.
    MissingTx,
    /// The receive carried no stamp.
    MissingRx,
    /// The kernel interval is not inside the user-space one: mismatched stamps.
    Inconsistent,
}

/// Slack when checking a kernel interval against the user-space one: the clocks differ
/// (`CLOCK_REALTIME` or the NIC's vs `CLOCK_MONOTONIC`) only in rate, by far less than this.
const SLACK_NS: f64 = 2_000.0;
const SLACK_REL: f64 = 1e-3;

/// The latency (µs) from kernel stamps, hardware preferred, checked against the user-space
/// interval `user_ns` (send call start to receive return).
pub fn pick(tx: KStamp, rx: Option<KStamp>, user_ns: f64) -> Result<(f64, StampKind), NoKernel> {
    let rx = rx.ok_or(NoKernel::MissingRx)?;
    let (d, kind) = match (tx.hw, rx.hw, tx.sw, rx.sw) {
        (Some(t), Some(r), _, _) => (r - t, StampKind::Hardware),
        (_, _, Some(t), Some(r)) => (r - t, StampKind::KernelSoftware),
        _ if rx.is_empty() => return Err(NoKernel::MissingRx),
        _ => return Err(NoKernel::MissingTx),
    };
    let d = d as f64;
    if d > 0.0 && d <= user_ns * (1.0 + SLACK_REL) + SLACK_NS {
        Ok((d / 1e3, kind))
    } else {
        Err(NoKernel::Inconsistent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(ns: i64) -> KStamp {
        KStamp::sw(ns)
    }

    #[test]
    fn unwrap_keys_across_the_32_bit_wrap() {
        assert_eq!(unwrap_key(0, 0), None);
        assert_eq!(unwrap_key(9, 15), Some(9));
        assert_eq!(unwrap_key(14, 15), Some(14));
        // A key not yet written refers to the previous lap (or nothing).
        assert_eq!(unwrap_key(20, 15), None);
        let w = (1u64 << 32) + 10;
        assert_eq!(unwrap_key(5, w), Some((1 << 32) + 5));
        assert_eq!(unwrap_key(u32::MAX, w), Some((1 << 32) - 1));
    }

    #[test]
    fn one_request_per_write() {
        // Three 10-byte requests, each written by its own send: ids 9, 19, 29.
        let got = attribute_stream(
            &[10, 10, 10],
            &[10, 10, 10],
            &[(9, s(100)), (19, s(200)), (29, s(300))],
            &[5, 5, 5],
            &[(5, s(150)), (5, s(250)), (5, s(350))],
        );
        assert_eq!(
            got,
            vec![
                (Some(s(100)), Some(s(150))),
                (Some(s(200)), Some(s(250))),
                (Some(s(300)), Some(s(350)))
            ]
        );
    }

    #[test]
    fn request_split_over_writes_takes_the_write_of_its_last_byte() {
        // Request 0 (10 B) goes out as 4 + 6 bytes; request 1 (10 B) and request 2 (5 B) in
        // one write of 15 bytes: ids 3, 9, 24.
        let got = attribute_stream(
            &[10, 10, 5],
            &[4, 6, 15],
            &[(3, s(10)), (9, s(20)), (24, s(30))],
            &[],
            &[],
        );
        let tx: Vec<_> = got.iter().map(|g| g.0).collect();
        assert_eq!(tx, vec![Some(s(20)), Some(s(30)), Some(s(30))]);
    }

    #[test]
    fn lost_or_foreign_stamps_never_lend_their_time() {
        // The stamp of write 2 (id 19) is lost; a later stamp (29) must not be used for it,
        // and an id no write produced (12) matches nothing.
        let got = attribute_stream(
            &[10, 10, 10],
            &[10, 10, 10],
            &[(9, s(1)), (12, s(99)), (29, s(3))],
            &[],
            &[],
        );
        let tx: Vec<_> = got.iter().map(|g| g.0).collect();
        assert_eq!(tx, vec![Some(s(1)), None, Some(s(3))]);
    }

    #[test]
    fn software_and_hardware_messages_of_one_send_merge() {
        let hw = KStamp {
            sw: None,
            hw: Some(7),
        };
        let got = attribute_stream(&[8], &[8], &[(7, s(5)), (7, hw)], &[], &[]);
        assert_eq!(
            got[0].0,
            Some(KStamp {
                sw: Some(5),
                hw: Some(7)
            })
        );
    }

    #[test]
    fn response_split_over_receives_takes_the_receive_of_its_last_byte() {
        // One 20-byte response arrives in 3 receives: it completes in the third.
        let got = attribute_stream(&[4], &[4], &[], &[20], &[(8, s(1)), (8, s(2)), (4, s(3))]);
        assert_eq!(got[0].1, Some(s(3)));
    }

    #[test]
    fn several_responses_in_one_receive_share_its_stamp() {
        // Responses of 5, 5, 5, 5 bytes: receive A has 12 bytes (responses 0, 1 complete,
        // 2 begins), receive B the remaining 8 (2 and 3 complete).
        let got = attribute_stream(
            &[1, 1, 1, 1],
            &[4],
            &[(3, s(0))],
            &[5, 5, 5, 5],
            &[(12, s(10)), (8, s(20))],
        );
        let rx: Vec<_> = got.iter().map(|g| g.1).collect();
        assert_eq!(rx, vec![Some(s(10)), Some(s(10)), Some(s(20)), Some(s(20))]);
        // One write carried all four requests' last bytes: all share its stamp.
        assert!(got.iter().all(|g| g.0 == Some(s(0))));
    }

    #[test]
    fn receives_without_stamps_leave_responses_unstamped() {
        let got = attribute_stream(
            &[1, 1],
            &[2],
            &[],
            &[3, 3],
            &[(4, KStamp::default()), (2, s(9))],
        );
        assert_eq!(got[0].1, None);
        assert_eq!(got[1].1, Some(s(9)));
    }

    #[test]
    fn udp_is_a_stream_of_datagrams() {
        // Datagram i has id i; only sampled ones (tokens) are tracked.
        let mut t = TxTracker::default();
        t.push(1, None);
        t.push(1, Some("a"));
        t.push(1, Some("b"));
        assert!(t.wrote(1).is_empty());
        assert_eq!(t.wrote(1), vec![("a", 1)]);
        assert_eq!(t.wrote(1), vec![("b", 2)]);
        assert_eq!(t.unwrap(2), Some(2));
    }

    #[test]
    fn pick_prefers_hardware_and_rejects_mismatches() {
        let both = |sw, hw| KStamp {
            sw: Some(sw),
            hw: Some(hw),
        };
        // 10 µs user-space; kernel software 8 µs; hardware 6 µs.
        assert_eq!(
            pick(both(1_000, 50_000), Some(both(9_000, 56_000)), 10_000.0),
            Ok((6.0, StampKind::Hardware))
        );
        assert_eq!(
            pick(s(1_000), Some(both(9_000, 56_000)), 10_000.0),
            Ok((8.0, StampKind::KernelSoftware))
        );
        // Hardware on one end only: software pair.
        assert_eq!(
            pick(
                KStamp {
                    sw: None,
                    hw: Some(3)
                },
                Some(s(5)),
                1e4
            ),
            Err(NoKernel::MissingTx)
        );
        assert_eq!(pick(s(1), None, 1e4), Err(NoKernel::MissingRx));
        assert_eq!(
            pick(KStamp::default(), Some(s(5)), 1e4),
            Err(NoKernel::MissingTx)
        );
        // Negative, or longer than the user-space interval: another request's stamp.
        assert_eq!(
            pick(s(9_000), Some(s(1_000)), 1e4),
            Err(NoKernel::Inconsistent)
        );
        assert_eq!(
            pick(s(0), Some(s(50_000)), 10_000.0),
            Err(NoKernel::Inconsistent)
        );
    }
}
