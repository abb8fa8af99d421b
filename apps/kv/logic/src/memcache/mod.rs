//! memcached's protocols on the shared store: [`ascii`] (text), [`binary`] and [`udp`]
//! framing, plus what they share: the version string, the stats list, and [`Memcache`], a
//! connection codec that picks ASCII or binary from the first byte as memcached does.

pub mod ascii;
pub mod binary;
pub mod udp;
pub mod udp_get;

use crate::conn::{Codec, Limits, Progress};
use crate::expiry::Clock;
use crate::numeric::push_u64;
use crate::sharded::Backend;
use alloc::vec::Vec;

/// The version we report (memcached-compatible form, clients parse `major.minor.patch`).
pub const VERSION: &str = "1.6.18-ferrix";

/// The binary protocol's request magic (protocol_binary.txt).
pub const MAGIC_REQUEST: u8 = 0x80;

/// The `stats` list as (name, value) pairs, values printed in decimal.
pub fn stats_list<B: Backend>(b: &mut B, now: Clock, mut f: impl FnMut(&str, &[u8])) {
    let (s, items, bytes) = b.totals();
    let mut v = Vec::with_capacity(24);
    let mut num = |name: &str, n: u64, f: &mut dyn FnMut(&str, &[u8])| {
        v.clear();
        push_u64(&mut v, n);
        f(name, &v);
    };
    num("pid", 1, &mut f);
    num("uptime", now.now_ns / 1_000_000_000, &mut f);
    num("time", now.unix_now(), &mut f);
    f("version", VERSION.as_bytes());
    num("pointer_size", 64, &mut f);
    num("curr_items", items as u64, &mut f);
    num("total_items", s.total_items, &mut f);
    num("bytes", bytes as u64, &mut f);
    num("limit_maxbytes", b.mem_limit() as u64, &mut f);
    num("cmd_get", s.cmd_get, &mut f);
    num("cmd_set", s.cmd_set, &mut f);
    num("get_hits", s.get_hits, &mut f);
    num("get_misses", s.get_misses, &mut f);
    num("evictions", s.evictions, &mut f);
    num("expired_unfetched", s.expired, &mut f);
}

/// A memcached connection: ASCII or binary, decided by the first byte received (0x80 is
/// binary), then fixed for the connection's life.
#[derive(Debug, Clone, Default)]
pub struct Memcache {
    limits: Limits,
    proto: Option<Proto>,
}

#[derive(Debug, Clone)]
enum Proto {
    Ascii(ascii::Ascii),
    Binary(binary::Binary),
}

impl Memcache {
    /// A connection with these limits.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            proto: None,
        }
    }
}

impl Codec for Memcache {
    fn feed<B: Backend>(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        b: &mut B,
        now: Clock,
    ) -> Progress {
        if self.proto.is_none() {
            match input.first() {
                None => return Progress::default(),
                Some(&MAGIC_REQUEST) => {
                    self.proto = Some(Proto::Binary(binary::Binary::new(self.limits)))
                }
                Some(_) => self.proto = Some(Proto::Ascii(ascii::Ascii::new(self.limits))),
            }
        }
        match self.proto.as_mut() {
            Some(Proto::Ascii(a)) => a.feed(input, out, b, now),
            Some(Proto::Binary(x)) => x.feed(input, out, b, now),
            None => Progress::default(),
        }
    }
}
