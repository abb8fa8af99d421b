//! A sequential client of the replicated store (apps/hovercraft), run inside the test's
//! namespace: `hover-client DEST FIRST LAST [--vanilla] [--keys K]`.
//!
//! For each round `i` in `FIRST..LAST` it writes `SET k{i % K} v{i}` (REPLICATED_ROUTE) and
//! reads it back with `GET` (REPLICATED_ROUTE_NO_SE), and must read `v{i}`. Before the first
//! round it reads every key whose last write was in an earlier run (`i < FIRST`), so a second
//! run after a failure checks that no acknowledged write was lost. Each request is one R2P2
//! packet to DEST (the multicast group in HovercRaft mode, a replica in vanilla mode, where a
//! `-NOTLEADER ip` answer sends the request on to that replica). A request unanswered for
//! 300 ms is sent again (a SET of the same value twice is harmless), up to 60 times.
//!
//! Prints `hover-client: ok N requests, R retries, repliers IP=COUNT ...` and exits 0, or
//! what went wrong and exits 1.
//!
//! `hover-client DEST --flood N` sends N reads of `k0` back to back (distinct rids), then
//! waits up to 10 s for an answer to each: prints `hover-client: flood N replies R drops D`
//! and exits 0 if every one got exactly one answer (a reply or a DROP), 1 otherwise.
#![forbid(unsafe_code)]

use ferrix_net::r2p2::header::{Header, MsgType, Policy};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

fn fail(msg: String) -> ! {
    eprintln!("hover-client: {msg}");
    std::process::exit(1);
}

use ferrix_tests::resp;

struct Client {
    socket: UdpSocket,
    dest: SocketAddrV4,
    vanilla: bool,
    rid: u16,
    retries: u64,
    requests: u64,
    repliers: BTreeMap<Ipv4Addr, u64>,
}

impl Client {
    fn call(&mut self, body: &[u8], policy: Policy) -> Vec<u8> {
        self.requests += 1;
        let mut buf = vec![0u8; 65536];
        for attempt in 0..60 {
            if attempt > 0 {
                self.retries += 1;
            }
            self.rid = self.rid.wrapping_add(1);
            let mut d = Header::single(MsgType::Request, policy, self.rid)
                .encode()
                .to_vec();
            d.extend_from_slice(body);
            if let Err(e) = self.socket.send_to(&d, self.dest) {
                fail(format!("send to {}: {e}", self.dest));
            }
            let deadline = Instant::now() + Duration::from_millis(300);
            while Instant::now() < deadline {
                let (n, src) = match self.socket.recv_from(&mut buf) {
                    Ok((n, SocketAddr::V4(src))) => (n, src),
                    _ => continue,
                };
                let Ok((h, payload)) = Header::parse(&buf[..n]) else {
                    fail(format!("a malformed reply from {src}"));
                };
                if h.rid != self.rid {
                    continue; // a late answer to an earlier try
                }
                match h.msg_type {
                    MsgType::Response if h.is_first() && h.is_last() => {
                        if let Some(ip) = payload.strip_prefix(b"-NOTLEADER ") {
                            let ip = String::from_utf8_lossy(ip);
                            if let (true, Ok(ip)) = (self.vanilla, ip.trim().parse()) {
                                self.dest = SocketAddrV4::new(ip, self.dest.port());
                            }
                            break; // no leader yet, or another one: try again
                        }
                        *self.repliers.entry(*src.ip()).or_default() += 1;
                        return payload.to_vec();
                    }
                    MsgType::Drop => break,
                    t => fail(format!("unexpected {t:?} from {src}")),
                }
            }
        }
        fail(format!(
            "no answer to {:?} after 60 tries",
            String::from_utf8_lossy(body)
        ))
    }
}

/// `--flood N`: N requests at once; every one must get one reply or one DROP.
fn flood(socket: &UdpSocket, dest: SocketAddrV4, n: u16) -> ! {
    let body = resp(&[b"GET", b"k0"]);
    let base = std::process::id() as u16;
    for i in 0..n {
        let mut d = Header::single(
            MsgType::Request,
            Policy::ReplicatedRouteNoSe,
            base.wrapping_add(i),
        )
        .encode()
        .to_vec();
        d.extend_from_slice(&body);
        if let Err(e) = socket.send_to(&d, dest) {
            fail(format!("send to {dest}: {e}"));
        }
    }
    let mut answered: BTreeMap<u16, MsgType> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = vec![0u8; 65536];
    while answered.len() < usize::from(n) && Instant::now() < deadline {
        let Ok((len, src)) = socket.recv_from(&mut buf) else {
            continue;
        };
        let Ok((h, _)) = Header::parse(&buf[..len]) else {
            fail(format!("a malformed answer from {src}"));
        };
        let i = h.rid.wrapping_sub(base);
        if i >= n || !matches!(h.msg_type, MsgType::Response | MsgType::Drop) {
            fail(format!(
                "unexpected {:?} rid {} from {src}",
                h.msg_type, h.rid
            ));
        }
        if let Some(t) = answered.insert(h.rid, h.msg_type) {
            fail(format!(
                "rid {} answered twice ({t:?}, then {:?})",
                h.rid, h.msg_type
            ));
        }
    }
    let drops = answered.values().filter(|t| **t == MsgType::Drop).count();
    println!(
        "hover-client: flood {n} replies {} drops {drops}",
        answered.len() - drops
    );
    if answered.len() < usize::from(n) {
        fail(format!(
            "{} of {n} unanswered",
            usize::from(n) - answered.len()
        ));
    }
    std::process::exit(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let (Some(dest), Some("--flood"), Some(n)) = (
        args.get(1).and_then(|a| a.parse::<SocketAddrV4>().ok()),
        args.get(2).map(String::as_str),
        args.get(3).and_then(|a| a.parse::<u16>().ok()),
    ) {
        let socket = UdpSocket::bind("0.0.0.0:0").unwrap_or_else(|e| fail(format!("bind: {e}")));
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        flood(&socket, dest, n);
    }
    let usage = || fail("usage: hover-client DEST FIRST LAST [--vanilla] [--keys K]".into());
    let (Some(dest), Some(first), Some(last)) = (
        args.get(1).and_then(|a| a.parse::<SocketAddrV4>().ok()),
        args.get(2).and_then(|a| a.parse::<u64>().ok()),
        args.get(3).and_then(|a| a.parse::<u64>().ok()),
    ) else {
        usage()
    };
    let vanilla = args.iter().any(|a| a == "--vanilla");
    let keys: u64 = match args.iter().position(|a| a == "--keys") {
        Some(i) => args
            .get(i + 1)
            .and_then(|k| k.parse().ok())
            .filter(|&k| k > 0)
            .unwrap_or_else(|| usage()),
        None => 16,
    };
    let socket = UdpSocket::bind("0.0.0.0:0").unwrap_or_else(|e| fail(format!("bind: {e}")));
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .expect("timeout");
    let mut c = Client {
        socket,
        dest,
        vanilla,
        rid: std::process::id() as u16,
        retries: 0,
        requests: 0,
        repliers: BTreeMap::new(),
    };
    // What earlier runs wrote last, key by key.
    for k in 0..keys.min(first) {
        let last_write = (0..first).rev().find(|i| i % keys == k).unwrap_or(k);
        let key = format!("k{k}");
        let got = c.call(
            &resp(&[b"GET", key.as_bytes()]),
            Policy::ReplicatedRouteNoSe,
        );
        let want = format!("${}\r\nv{last_write}\r\n", format!("v{last_write}").len());
        if got != want.as_bytes() {
            fail(format!(
                "{key}: read {:?}, but v{last_write} was acknowledged",
                String::from_utf8_lossy(&got)
            ));
        }
    }
    for i in first..last {
        let key = format!("k{}", i % keys);
        let value = format!("v{i}");
        let got = c.call(
            &resp(&[b"SET", key.as_bytes(), value.as_bytes()]),
            Policy::ReplicatedRoute,
        );
        if got != b"+OK\r\n" {
            fail(format!("SET {key}: {:?}", String::from_utf8_lossy(&got)));
        }
        let got = c.call(
            &resp(&[b"GET", key.as_bytes()]),
            Policy::ReplicatedRouteNoSe,
        );
        let want = format!("${}\r\n{value}\r\n", value.len());
        if got != want.as_bytes() {
            fail(format!(
                "GET {key} after SET {value}: {:?}",
                String::from_utf8_lossy(&got)
            ));
        }
    }
    let repliers: Vec<String> = c
        .repliers
        .iter()
        .map(|(ip, n)| format!("{ip}={n}"))
        .collect();
    println!(
        "hover-client: ok {} requests, {} retries, repliers {}",
        c.requests,
        c.retries,
        repliers.join(" ")
    );
}
