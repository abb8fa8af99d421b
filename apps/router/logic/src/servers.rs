//! The server set as soft state (thesis 10.4, "Server membership"): a server joins by sending
//! FEEDBACK, stays while it keeps sending (a completed request or a heartbeat), and is removed
//! after a configurable silence. For each server the router keeps the requests it sent there
//! and has not seen completed, oldest first: the JBSQ queue length is the length of that list.
//!
//! Completion rules (why lost or duplicated FEEDBACK cannot leak or double-free a slot for
//! ever):
//! 1. A FEEDBACK names the request it completes (client IP, port, rid; reference layout).
//!    It frees that request's entry if present. A duplicate, or one for a request the router
//!    never sent (or already reclaimed), matches nothing and frees nothing: no double free.
//! 2. With the extension, the FEEDBACK also carries the server's count of requests served.
//!    When it rises by `d` since the highest count seen, `d` requests finished: besides the one
//!    named, the `d - 1` oldest entries are freed (their FEEDBACK was lost; servers serve in
//!    order). A count that does not rise (reordered or duplicated FEEDBACK) reclaims nothing.
//! 3. Any entry older than the slot timeout is freed (a REQ0 or FEEDBACK lost with no later
//!    FEEDBACK to reveal it, e.g. reference servers without the counter). An expired entry
//!    may have been served (its FEEDBACK lost), so its increment of the served count may be
//!    still to come: after an expiry the next rise of the count only moves the baseline
//!    (never back: a late duplicate's lower count is ignored as always). Otherwise a count rising after an expiry would free a request still at the
//!    server (a double free the host simulation found). The cost: FEEDBACK lost just before
//!    an expiry is recovered by its own timeout rather than by the count.
//!
//! So the router's count can be off only by FEEDBACK in flight or lost since the last counter
//! seen, and never for longer than the slot timeout.

use crate::wire::Feedback;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::net::SocketAddrV4;

/// A request sent to a server and not yet seen completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outstanding {
    /// The client (source of REQ0).
    pub client: SocketAddrV4,
    /// Its request id.
    pub rid: u16,
    /// SVEN class (the REQ0's policy nibble).
    pub class: u8,
    /// When REQ0 reached the router.
    pub arrived_ns: u64,
    /// When the router sent it to the server.
    pub sent_ns: u64,
}

/// One server (one address that sends FEEDBACK).
#[derive(Clone, Debug)]
pub struct Server {
    addr: SocketAddrV4,
    /// Announced bound (None: the policy's default applies).
    announced: Option<u32>,
    default_bound: u32,
    queue: VecDeque<Outstanding>,
    /// Highest served count seen in FEEDBACK.
    served_seen: Option<u64>,
    /// An entry expired since: the next rise of the count is a new baseline (rule 3).
    recount: bool,
    last_seen_ns: u64,
    /// Requests sent here.
    pub assigned: u64,
    /// Requests seen completed (FEEDBACK matched or reclaimed by the served count).
    pub completed: u64,
    /// Entries freed by timeout.
    pub expired: u64,
}

impl Server {
    fn new(addr: SocketAddrV4, default_bound: u32, now_ns: u64) -> Server {
        Server {
            addr,
            announced: None,
            default_bound,
            queue: VecDeque::new(),
            served_seen: None,
            recount: false,
            last_seen_ns: now_ns,
            assigned: 0,
            completed: 0,
            expired: 0,
        }
    }

    /// The server's address (where its REQ0s go).
    pub fn addr(&self) -> SocketAddrV4 {
        self.addr
    }

    /// Requests outstanding in the router's view.
    #[inline]
    pub fn outstanding(&self) -> usize {
        self.queue.len()
    }

    /// Most outstanding requests the server takes (0: it takes none now).
    #[inline]
    pub fn bound(&self) -> u32 {
        self.announced.unwrap_or(self.default_bound)
    }

    /// When the server last sent FEEDBACK.
    pub fn last_seen_ns(&self) -> u64 {
        self.last_seen_ns
    }

    /// The oldest outstanding request.
    pub fn oldest(&self) -> Option<&Outstanding> {
        self.queue.front()
    }
}

/// What one FEEDBACK did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Completion {
    /// The request it named, if it was outstanding.
    pub matched: Option<Outstanding>,
    /// Other entries freed because the served count rose by more than one.
    pub reclaimed: u32,
}

/// Why a FEEDBACK's sender cannot join.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JoinRefused {
    /// The table holds `max_servers` already.
    Full,
    /// The address is outside the configured server network.
    NotAllowed,
}

/// The servers, in join order.
#[derive(Clone, Debug)]
pub struct ServerTable {
    servers: Vec<Server>,
    max_servers: usize,
    /// Cap on each server's list (policies without a bound would otherwise let it grow).
    max_tracked: usize,
    default_bound: u32,
    /// Lets announced bounds override the default (`false`: the router's n for everyone).
    honour_announced: bool,
}

impl ServerTable {
    pub(crate) fn new(
        max_servers: usize,
        max_tracked: usize,
        default_bound: u32,
        honour_announced: bool,
    ) -> Self {
        ServerTable {
            servers: Vec::new(),
            max_servers,
            max_tracked: max_tracked.max(1),
            default_bound,
            honour_announced,
        }
    }

    /// The servers, in join order.
    #[inline]
    pub fn as_slice(&self) -> &[Server] {
        &self.servers
    }

    /// The index of `addr`.
    #[inline]
    pub fn find(&self, addr: SocketAddrV4) -> Option<usize> {
        self.servers.iter().position(|s| s.addr == addr)
    }

    /// The index of `addr`, adding it if new (returns also whether it joined now).
    pub(crate) fn find_or_join(
        &mut self,
        addr: SocketAddrV4,
        now_ns: u64,
    ) -> Result<(usize, bool), JoinRefused> {
        if let Some(i) = self.find(addr) {
            return Ok((i, false));
        }
        if self.servers.len() >= self.max_servers {
            return Err(JoinRefused::Full);
        }
        self.servers
            .push(Server::new(addr, self.default_bound, now_ns));
        Ok((self.servers.len() - 1, true))
    }

    /// Records that request `o` went to server `i`; returns the entry evicted untracked when
    /// the list was at its cap (unbounded policies only).
    #[inline]
    pub(crate) fn assign(&mut self, i: usize, o: Outstanding) -> Option<Outstanding> {
        let cap = self.max_tracked;
        let s = &mut self.servers[i];
        s.assigned += 1;
        let evicted = if s.queue.len() >= cap {
            s.queue.pop_front()
        } else {
            None
        };
        s.queue.push_back(o);
        evicted
    }

    /// Applies FEEDBACK `fb` from server `i` (rules in the module doc).
    #[inline]
    pub(crate) fn complete(&mut self, i: usize, fb: &Feedback, now_ns: u64) -> Completion {
        let honour = self.honour_announced;
        let s = &mut self.servers[i];
        s.last_seen_ns = now_ns;
        let mut c = Completion::default();
        if !fb.is_heartbeat()
            && let Some(pos) = s
                .queue
                .iter()
                .position(|o| o.rid == fb.rid && o.client == fb.client)
        {
            c.matched = s.queue.remove(pos);
            s.completed += 1;
        }
        if let Some(ext) = fb.ext {
            if honour {
                s.announced = Some(ext.n.min(crate::policy::MAX_BOUND));
            }
            if let Some(prev) = s.served_seen {
                if ext.served > prev && s.recount {
                    s.recount = false;
                    s.served_seen = Some(ext.served);
                } else if ext.served > prev {
                    let finished = ext.served - prev;
                    let extra = finished.saturating_sub(u64::from(c.matched.is_some()));
                    let n = usize::try_from(extra)
                        .unwrap_or(usize::MAX)
                        .min(s.queue.len());
                    s.queue.drain(..n);
                    s.completed += n as u64;
                    c.reclaimed = u32::try_from(n).unwrap_or(u32::MAX);
                    s.served_seen = Some(ext.served);
                }
            } else {
                s.served_seen = Some(ext.served);
            }
        }
        c
    }

    /// Frees entries sent before `deadline_ns`; calls `f` for each.
    pub(crate) fn expire(&mut self, deadline_ns: u64, mut f: impl FnMut(&Outstanding)) {
        for s in &mut self.servers {
            while let Some(o) = s.queue.front() {
                if o.sent_ns >= deadline_ns {
                    break;
                }
                f(o);
                s.expired += 1;
                // Rule 3: the served count may still include this one; start over.
                s.recount = true;
                s.queue.pop_front();
            }
        }
    }

    /// Removes servers silent since before `deadline_ns`; calls `f` with each removed server.
    pub(crate) fn remove_silent(&mut self, deadline_ns: u64, mut f: impl FnMut(&Server)) {
        self.servers.retain(|s| {
            let keep = s.last_seen_ns >= deadline_ns;
            if !keep {
                f(s);
            }
            keep
        });
    }

    /// Requests outstanding over all servers.
    pub fn total_outstanding(&self) -> usize {
        self.servers.iter().map(Server::outstanding).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::FeedbackExt;

    fn addr(last: u8, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new([10, 0, 0, last].into(), port)
    }

    fn req(rid: u16, t: u64) -> Outstanding {
        Outstanding {
            client: addr(100, 5000),
            rid,
            class: 0,
            arrived_ns: t,
            sent_ns: t,
        }
    }

    fn fb(rid: u16, served: Option<u64>) -> Feedback {
        Feedback {
            rid,
            client: addr(100, 5000),
            ext: served.map(|served| FeedbackExt { n: 2, served }),
        }
    }

    fn table() -> ServerTable {
        let mut t = ServerTable::new(4, 64, 2, true);
        assert_eq!(t.find_or_join(addr(1, 8000), 0), Ok((0, true)));
        t
    }

    #[test]
    fn duplicates_free_nothing() {
        let mut t = table();
        t.assign(0, req(1, 0));
        t.assign(0, req(2, 0));
        assert!(t.complete(0, &fb(1, None), 1).matched.is_some());
        assert_eq!(t.complete(0, &fb(1, None), 2), Completion::default());
        assert_eq!(t.as_slice()[0].outstanding(), 1);
    }

    #[test]
    fn a_rising_served_count_reclaims_lost_feedback() {
        let mut t = table();
        for rid in 1..=4 {
            t.assign(0, req(rid, u64::from(rid)));
        }
        t.complete(0, &fb(1, Some(10)), 5); // first count: a baseline
        assert_eq!(t.as_slice()[0].outstanding(), 3);
        // FEEDBACK for 2 lost; 3's says served 12: 2 is reclaimed.
        let c = t.complete(0, &fb(3, Some(12)), 6);
        assert_eq!((c.matched.map(|o| o.rid), c.reclaimed), (Some(3), 1));
        assert_eq!(t.as_slice()[0].oldest().map(|o| o.rid), Some(4));
        // The late FEEDBACK for 2 (count 11, not rising) frees nothing more.
        assert_eq!(t.complete(0, &fb(2, Some(11)), 7), Completion::default());
        assert_eq!(t.as_slice()[0].outstanding(), 1);
        assert_eq!(t.as_slice()[0].completed, 3);
    }

    #[test]
    fn a_count_rising_after_an_expiry_frees_no_live_request() {
        let mut t = table();
        t.complete(0, &fb(0, Some(0)), 0); // baseline: served 0
        t.assign(0, req(1, 10));
        // 1 is served, its FEEDBACK lost; its entry expires.
        t.expire(20, |_| {});
        assert_eq!(t.as_slice()[0].outstanding(), 0);
        t.assign(0, req(2, 30));
        // A heartbeat now says served 1 (request 1): request 2 is still at the server.
        let hb = Feedback {
            rid: 0,
            client: SocketAddrV4::new([0, 0, 0, 0].into(), 0),
            ext: Some(FeedbackExt { n: 2, served: 1 }),
        };
        assert_eq!(t.complete(0, &hb, 40).reclaimed, 0);
        assert_eq!(t.as_slice()[0].oldest().map(|o| o.rid), Some(2));
        // That heartbeat was the new baseline: a later gap reclaims again.
        t.assign(0, req(3, 50));
        let c = t.complete(0, &fb(3, Some(3)), 60);
        assert_eq!((c.matched.map(|o| o.rid), c.reclaimed), (Some(3), 1));
        assert_eq!(t.as_slice()[0].outstanding(), 0);
    }

    #[test]
    fn expiry_and_silence() {
        let mut t = table();
        t.find_or_join(addr(2, 8000), 50).unwrap();
        t.assign(0, req(1, 10));
        t.assign(0, req(2, 20));
        let mut n = 0;
        t.expire(15, |_| n += 1);
        assert_eq!((n, t.as_slice()[0].outstanding()), (1, 1));
        let mut gone = Vec::new();
        t.remove_silent(40, |s| gone.push(s.addr()));
        assert_eq!(gone, [addr(1, 8000)]);
        assert_eq!(t.as_slice().len(), 1);
    }

    #[test]
    fn table_is_bounded_and_announced_bounds_apply() {
        let mut t = table();
        for i in 2..=4 {
            t.find_or_join(addr(i, 8000), 0).unwrap();
        }
        assert_eq!(t.find_or_join(addr(9, 8000), 0), Err(JoinRefused::Full));
        assert_eq!(t.as_slice()[0].bound(), 2);
        let hb = Feedback {
            rid: 0,
            client: SocketAddrV4::new([0, 0, 0, 0].into(), 0),
            ext: Some(FeedbackExt { n: 0, served: 0 }),
        };
        assert!(hb.is_heartbeat());
        t.complete(0, &hb, 1);
        assert_eq!(t.as_slice()[0].bound(), 0);
    }
}
