//! The kv guest's datagram frontends checked from Linux (run inside the test's namespace):
//! `kv-datagram-client MEMCACHED_UDP_ADDR R2P2_ADDR`.
//!
//! memcached over UDP (8-byte frame header: request id, sequence, total, reserved): ASCII set
//! and get, the binary protocol, a multi-get whose reply takes several datagrams (reassembled
//! by sequence number, every datagram carrying the request id and the total), and a runt
//! datagram that must get no reply while the next request still works.
//! R2P2 (one RESP command per message, through `ferrix_net`'s client over a Linux socket):
//! SET/GET, a multi-packet SET and its multi-packet GET reply, a GET with the read-only policy,
//! a SET with the read-only policy refused, two commands in one message refused, and a key set
//! over R2P2 read back over memcached UDP (one store).
//!
//! Requests are retried a few times while the guest may still be booting (the first ones).
//! Prints `kv-datagram-client: ok N checks` and exits 0, or what went wrong and exits 1.
#![forbid(unsafe_code)]

use ferrix_net::r2p2::{Client, ClientConfig, Outcome, Policy};
use r2p2_linux::{StdClock, UdpTransport};
use std::net::{SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

fn fail(msg: String) -> ! {
    eprintln!("kv-datagram-client: {msg}");
    std::process::exit(1);
}

/// One memcached UDP request; the reassembled reply and its datagram count (None: no reply
/// within `wait`).
fn mc(
    s: &UdpSocket,
    dst: SocketAddrV4,
    rid: u16,
    body: &[u8],
    wait: Duration,
) -> Option<(Vec<u8>, u16)> {
    let mut d = Vec::new();
    for v in [rid, 0, 1, 0] {
        d.extend_from_slice(&v.to_be_bytes());
    }
    d.extend_from_slice(body);
    s.send_to(&d, dst)
        .unwrap_or_else(|e| fail(format!("send: {e}")));
    let deadline = Instant::now() + wait;
    let mut parts: Vec<Option<Vec<u8>>> = Vec::new();
    let mut buf = [0u8; 65536];
    while Instant::now() < deadline {
        let n = match s.recv_from(&mut buf) {
            Ok((n, _)) => n,
            Err(_) => continue,
        };
        if n < 8 {
            fail(format!("a reply datagram of {n} bytes"));
        }
        let u = |i: usize| u16::from_be_bytes([buf[i], buf[i + 1]]);
        let (r, seq, total) = (u(0), u(2), u(4));
        if r != rid {
            continue; // a late reply to an earlier try
        }
        if parts.is_empty() {
            parts = vec![None; usize::from(total)];
        }
        if usize::from(total) != parts.len() || usize::from(seq) >= parts.len() {
            fail(format!(
                "rid {rid}: datagram {seq} of {total}, expected {} in all",
                parts.len()
            ));
        }
        parts[usize::from(seq)] = Some(buf[8..n].to_vec());
        if parts.iter().all(Option::is_some) {
            let total = parts.len() as u16;
            return Some((parts.into_iter().flatten().flatten().collect(), total));
        }
    }
    None
}

/// [`mc`] retried while the guest may still be booting.
fn mc_retry(s: &UdpSocket, dst: SocketAddrV4, rid: &mut u16, body: &[u8]) -> (Vec<u8>, u16) {
    for _ in 0..20 {
        *rid += 1;
        if let Some(r) = mc(s, dst, *rid, body, Duration::from_millis(1500)) {
            return r;
        }
    }
    fail(format!(
        "no memcached UDP reply to {:?}",
        String::from_utf8_lossy(&body[..body.len().min(60)])
    ))
}

use ferrix_tests::resp;

struct R2p2 {
    socket: UdpSocket,
    client: Client<UdpTransport, StdClock>,
    dst: SocketAddrV4,
}

impl R2p2 {
    /// One request; its reply (retried a few times while the guest boots).
    fn call(&mut self, body: &[u8], policy: Policy) -> Vec<u8> {
        let mut buf = vec![0u8; 65536];
        for _ in 0..20 {
            self.client
                .send_request(self.dst, body, policy, 1_500_000_000, 0)
                .unwrap_or_else(|e| fail(format!("r2p2 send: {e:?}")));
            loop {
                if let Some(c) = self.client.next_completion() {
                    match c.outcome {
                        Outcome::Success(v) => return v,
                        Outcome::Timeout => break,
                        o => fail(format!("r2p2: {o:?}")),
                    }
                }
                match self.socket.recv_from(&mut buf) {
                    Ok((n, std::net::SocketAddr::V4(src))) => {
                        self.client.handle_datagram(src, &buf[..n])
                    }
                    _ => self.client.poll_timers(),
                }
            }
        }
        fail(format!(
            "no R2P2 reply to {:?}",
            String::from_utf8_lossy(&body[..body.len().min(60)])
        ))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mc_dst), Some(r2_dst)) = (
        args.get(1).and_then(|a| a.parse::<SocketAddrV4>().ok()),
        args.get(2).and_then(|a| a.parse::<SocketAddrV4>().ok()),
    ) else {
        eprintln!("usage: kv-datagram-client MEMCACHED_UDP_ADDR R2P2_ADDR");
        std::process::exit(2);
    };
    let mut checks = 0;
    let mut check = |ok: bool, what: String| {
        if !ok {
            fail(what);
        }
        checks += 1;
    };
    let s = UdpSocket::bind("0.0.0.0:0").unwrap_or_else(|e| fail(format!("bind: {e}")));
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut rid = 100;

    // memcached UDP, ASCII.
    let (r, n) = mc_retry(&s, mc_dst, &mut rid, b"set a 0 0 3\r\nabc\r\n");
    check(r == b"STORED\r\n" && n == 1, format!("set a: {r:?} in {n}"));
    let (r, _) = mc_retry(&s, mc_dst, &mut rid, b"get a\r\n");
    check(
        r == b"VALUE a 0 3\r\nabc\r\nEND\r\n",
        format!("get a: {r:?}"),
    );
    // A reply of several datagrams: five copies of a 1,300-byte value.
    let big = vec![b'x'; 1300];
    let mut set = b"set big 5 0 1300\r\n".to_vec();
    set.extend_from_slice(&big);
    set.extend_from_slice(b"\r\n");
    let (r, _) = mc_retry(&s, mc_dst, &mut rid, &set);
    check(r == b"STORED\r\n", format!("set big: {r:?}"));
    let (r, n) = mc_retry(&s, mc_dst, &mut rid, b"get big big big big big\r\n");
    let mut want = Vec::new();
    for _ in 0..5 {
        want.extend_from_slice(b"VALUE big 5 1300\r\n");
        want.extend_from_slice(&big);
        want.extend_from_slice(b"\r\n");
    }
    want.extend_from_slice(b"END\r\n");
    check(
        r == want && n >= 5,
        format!("multi-get: {} bytes in {n} datagrams", r.len()),
    );
    // memcached UDP, binary: SET k=v then GETK.
    let bin = |opcode: u8, key: &[u8], extras: &[u8], value: &[u8]| {
        let mut h = vec![0x80, opcode];
        h.extend_from_slice(&(key.len() as u16).to_be_bytes());
        h.push(extras.len() as u8);
        h.extend_from_slice(&[0, 0, 0]);
        h.extend_from_slice(&((extras.len() + key.len() + value.len()) as u32).to_be_bytes());
        h.extend_from_slice(&[0; 12]);
        h.extend_from_slice(extras);
        h.extend_from_slice(key);
        h.extend_from_slice(value);
        h
    };
    let (r, _) = mc_retry(&s, mc_dst, &mut rid, &bin(0x01, b"bk", &[0; 8], b"bv"));
    check(
        r.len() == 24 && r[0] == 0x81 && r[6..8] == [0, 0],
        format!("binary set: {r:?}"),
    );
    let (r, _) = mc_retry(&s, mc_dst, &mut rid, &bin(0x0c, b"bk", &[], b""));
    check(
        r.len() == 24 + 4 + 2 + 2 && r.ends_with(b"bkbv"),
        format!("binary getk: {r:?}"),
    );
    // A runt: no reply; the next request is still served.
    s.send_to(b"\x00\x01", mc_dst).expect("send");
    rid += 1;
    let quiet = mc(&s, mc_dst, rid, b"\x00", Duration::from_millis(300)).is_none();
    check(quiet, "a reply to a malformed request".into());
    let (r, _) = mc_retry(&s, mc_dst, &mut rid, b"get a\r\n");
    check(
        r == b"VALUE a 0 3\r\nabc\r\nEND\r\n",
        format!("get a after garbage: {r:?}"),
    );

    // R2P2.
    let socket = UdpSocket::bind("0.0.0.0:0").unwrap_or_else(|e| fail(format!("bind: {e}")));
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    let transport = UdpTransport::new(&socket).unwrap_or_else(|e| fail(format!("{e}")));
    let mut r2 = R2p2 {
        socket,
        client: Client::new(transport, StdClock::default(), ClientConfig::default()),
        dst: r2_dst,
    };
    let r = r2.call(&resp(&[b"SET", b"rk", b"rv"]), Policy::LbRoute);
    check(r == b"+OK\r\n", format!("r2p2 SET: {r:?}"));
    let r = r2.call(&resp(&[b"GET", b"rk"]), Policy::ReplicatedRouteNoSe);
    check(r == b"$2\r\nrv\r\n", format!("r2p2 read-only GET: {r:?}"));
    let r = r2.call(
        &resp(&[b"SET", b"rk", b"other"]),
        Policy::ReplicatedRouteNoSe,
    );
    check(
        r.starts_with(b"-ERR write command sent with the read-only policy"),
        format!("r2p2 read-only SET: {r:?}"),
    );
    let r = r2.call(&resp(&[b"GET", b"rk"]), Policy::LbRoute);
    check(
        r == b"$2\r\nrv\r\n",
        format!("the refused SET changed nothing: {r:?}"),
    );
    // Multi-packet both ways: a 6,000-byte value.
    let value: Vec<u8> = (0..6000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let r = r2.call(&resp(&[b"SET", b"large", &value]), Policy::LbRoute);
    check(r == b"+OK\r\n", format!("r2p2 multi-packet SET: {r:?}"));
    let r = r2.call(&resp(&[b"GET", b"large"]), Policy::LbRoute);
    let mut want = b"$6000\r\n".to_vec();
    want.extend_from_slice(&value);
    want.extend_from_slice(b"\r\n");
    check(
        r == want,
        format!("r2p2 multi-packet GET: {} bytes", r.len()),
    );
    let mut two = resp(&[b"GET", b"rk"]);
    two.extend_from_slice(&resp(&[b"GET", b"rk"]));
    let r = r2.call(&two, Policy::LbRoute);
    check(
        r.starts_with(b"-ERR Protocol error"),
        format!("two commands in one message: {r:?}"),
    );
    // One store: the R2P2 key over memcached UDP.
    let (r, _) = mc_retry(&s, mc_dst, &mut rid, b"get rk\r\n");
    check(
        r == b"VALUE rk 0 2\r\nrv\r\nEND\r\n",
        format!("rk over memcached UDP: {r:?}"),
    );
    println!("kv-datagram-client: ok {checks} checks");
}
