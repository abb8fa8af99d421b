//! The balancing policies (thesis 10.2-10.5) and how each picks a server for a REQ0 from the
//! router's view of outstanding requests. The pick is pure: it reads the server table and an
//! RNG and returns an index; the router records the assignment.

use crate::rng::Rng;
use crate::servers::Server;
use core::fmt;
use core::str::FromStr;

/// How REQ0s with policy LB_ROUTE are spread over the servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Balance {
    /// Uniformly at random.
    Random,
    /// Round robin over the live servers.
    RoundRobin,
    /// Join the shortest queue: fewest outstanding requests (router's view), unbounded.
    Jsq,
    /// Power of two choices, PL(2): two distinct random servers, the one with fewer outstanding.
    PowerOfTwo,
    /// JBSQ(n): fewest outstanding among servers below their bound; when every server is at
    /// its bound the request waits in the router's central FIFO. `n` is the bound for servers
    /// that do not announce one in FEEDBACK.
    Jbsq(u32),
}

impl Balance {
    /// True if the policy bounds each server's queue (and so may hold requests centrally).
    pub fn is_bounded(&self) -> bool {
        matches!(self, Balance::Jbsq(_))
    }

    /// The bound a server gets until it announces its own.
    pub fn default_bound(&self) -> u32 {
        match self {
            Balance::Jbsq(n) => *n,
            _ => u32::MAX,
        }
    }
}

impl fmt::Display for Balance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Balance::Random => f.write_str("rand"),
            Balance::RoundRobin => f.write_str("rr"),
            Balance::Jsq => f.write_str("jsq"),
            Balance::PowerOfTwo => f.write_str("pl2"),
            Balance::Jbsq(n) => write!(f, "jbsq:{n}"),
        }
    }
}

/// A policy name that is not one of ours.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadPolicy;

impl fmt::Display for BadPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown policy (expected rand, rr, jsq, pl2 or jbsq:N with 1 <= N <= 1024)")
    }
}

/// Largest JBSQ bound the router accepts, from its configuration or from a server.
pub const MAX_BOUND: u32 = 1024;

impl FromStr for Balance {
    type Err = BadPolicy;

    /// `rand`, `rr`, `jsq`, `pl2` (or `pow2`), `jbsq:N` (or `jbsqN`).
    fn from_str(s: &str) -> Result<Self, BadPolicy> {
        Ok(match s {
            "rand" | "random" => Balance::Random,
            "rr" | "round-robin" => Balance::RoundRobin,
            "jsq" => Balance::Jsq,
            "pl2" | "pow2" => Balance::PowerOfTwo,
            _ => {
                let n = s
                    .strip_prefix("jbsq:")
                    .or_else(|| s.strip_prefix("jbsq"))
                    .ok_or(BadPolicy)?;
                let n: u32 = n.parse().map_err(|_| BadPolicy)?;
                if !(1..=MAX_BOUND).contains(&n) {
                    return Err(BadPolicy);
                }
                Balance::Jbsq(n)
            }
        })
    }
}

/// Picks a server for one REQ0, or None if none may take it now (no server that accepts new
/// requests; for JBSQ, every server at its bound). `cursor` is the round-robin position, also
/// the starting point of scans so that ties rotate instead of always landing on server 0.
pub(crate) fn pick(
    balance: Balance,
    servers: &[Server],
    cursor: &mut usize,
    rng: &mut Rng,
) -> Option<usize> {
    let k = servers.len();
    if k == 0 {
        return None;
    }
    let open = |s: &Server| s.bound() > 0;
    match balance {
        Balance::Random => {
            let start = rng.below(k);
            scan(k, start).find(|&i| open(&servers[i]))
        }
        Balance::RoundRobin => {
            let i = scan(k, *cursor % k).find(|&i| open(&servers[i]))?;
            *cursor = i + 1;
            Some(i)
        }
        Balance::Jsq => {
            let start = *cursor % k;
            *cursor = start + 1;
            least(servers, start, |s| open(s))
        }
        Balance::PowerOfTwo => {
            let a = rng.below(k);
            let b = if k > 1 {
                (a + 1 + rng.below(k - 1)) % k
            } else {
                a
            };
            match (open(&servers[a]), open(&servers[b])) {
                (true, true) if servers[b].outstanding() < servers[a].outstanding() => Some(b),
                (true, _) => Some(a),
                (false, true) => Some(b),
                (false, false) => least(servers, a, |s| open(s)),
            }
        }
        Balance::Jbsq(_) => {
            let start = *cursor % k;
            *cursor = start + 1;
            least(servers, start, |s| s.outstanding() < s.bound() as usize)
        }
    }
}

/// Indices `start, start+1, ..` modulo `k`, each once.
fn scan(k: usize, start: usize) -> impl Iterator<Item = usize> {
    (0..k).map(move |j| (start + j) % k)
}

/// The eligible server with the fewest outstanding requests, first found from `start` on ties.
fn least(servers: &[Server], start: usize, eligible: impl Fn(&Server) -> bool) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for i in scan(servers.len(), start) {
        let s = &servers[i];
        if !eligible(s) {
            continue;
        }
        let o = s.outstanding();
        if best.is_none_or(|(_, b)| o < b) {
            best = Some((i, o));
            if o == 0 {
                break;
            }
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn names_round_trip() {
        for p in [
            Balance::Random,
            Balance::RoundRobin,
            Balance::Jsq,
            Balance::PowerOfTwo,
            Balance::Jbsq(1),
            Balance::Jbsq(20),
        ] {
            assert_eq!(p.to_string().parse::<Balance>(), Ok(p));
        }
        assert_eq!("jbsq2".parse::<Balance>(), Ok(Balance::Jbsq(2)));
        for bad in ["", "jbsq", "jbsq:0", "jbsq:1025", "jbsq:-1", "lifo"] {
            assert_eq!(bad.parse::<Balance>(), Err(BadPolicy), "{bad}");
        }
    }
}
