//! `ferrix bench kv`'s instruction counts: guest instructions per GET and per SET of a
//! 64-byte value under QEMU `-icount shift=0` (`--profile microvm-icount`), where a guest ns
//! is one guest instruction.
//!
//! The guest (one vCPU) runs with `busy-stats` and `udp-port=11211`: whenever a client
//! half-closes, it prints the scheduler's busy counters (`kv: busy: events E busy_ns B app_ns
//! A`; busy time counts only loop turns that did something: driver, TCP, scheduler and app, not
//! idle polling). The bench talks to it in phases, one TCP connection each, closed loop (one
//! command outstanding, every reply checked byte for byte), and waits for the guest's line
//! after each: two warm-up phases (the key stored, RESP and memcached ASCII, one UDP GET), an
//! empty connection, K GETs and K SETs per protocol, K memcached UDP GETs (one datagram each,
//! one at a time) followed by an empty connection, another empty connection. A phase's
//! instructions are the difference of two consecutive lines; its per-command figure subtracts
//! the mean of the two empty connections (connect, close and the counters' own line) and
//! divides by K. (A line leaves out the loop turn that prints it; that turn lands in the next
//! phase, the same in every phase.) `app_ns` counts flow events only: the UDP frontend runs
//! inside the kernel's poll, so its codec is in the kernel's share.
//!
//! The UDP echo app's instructions per received frame under the same profile is the yardstick
//! (issue 12: a 64-byte GET over UDP within 2x of it); the row gives both GETs' ratios to it.

use crate::bench_guest::{GuestSpec, GuestVm};
use crate::bench_kv::KvBenchOptions;
use crate::bench_report::TextRow;
use crate::run::resolve_image;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

/// The key and the 64-byte value every GET and SET uses.
const KEY: &str = "ferrix:bench:key";
const VALUE: [u8; 64] = [b'v'; 64];

/// Under `-icount` an idle guest spins at TCG speed (about 200 M instructions per real
/// second here), so this many guest ms of idleness are a few real seconds: long enough for
/// any gap between the bench's phases, short enough to end the VM soon after the last.
const IDLE_EXIT_MS: u32 = 1000;

/// The guest's scheduler counters at one point.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Busy {
    pub events: u64,
    pub busy: u64,
    pub app: u64,
}

impl Busy {
    fn minus(self, b: Busy) -> Busy {
        Busy {
            events: self.events.saturating_sub(b.events),
            busy: self.busy.saturating_sub(b.busy),
            app: self.app.saturating_sub(b.app),
        }
    }
}

/// Every `kv: busy: events E busy_ns B app_ns A` line of the console, in order.
pub fn busy_lines(console: &str) -> Vec<Busy> {
    console
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.strip_prefix("kv: busy: ")?.split(' ').collect();
            match w[..] {
                ["events", e, "busy_ns", b, "app_ns", a] => Some(Busy {
                    events: e.parse().ok()?,
                    busy: b.parse().ok()?,
                    app: a.parse().ok()?,
                }),
                _ => None,
            }
        })
        .collect()
}

/// The protocols measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Resp,
    Ascii,
}

/// A command and the exact reply it must get.
type Exchange = (Vec<u8>, Vec<u8>);

fn set(p: Proto) -> Exchange {
    let mut req = match p {
        Proto::Resp => format!(
            "*3\r\n$3\r\nSET\r\n${}\r\n{KEY}\r\n${}\r\n",
            KEY.len(),
            VALUE.len()
        ),
        Proto::Ascii => format!("set {KEY} 0 0 {}\r\n", VALUE.len()),
    }
    .into_bytes();
    req.extend_from_slice(&VALUE);
    req.extend_from_slice(b"\r\n");
    let reply = match p {
        Proto::Resp => b"+OK\r\n".to_vec(),
        Proto::Ascii => b"STORED\r\n".to_vec(),
    };
    (req, reply)
}

fn get(p: Proto) -> Exchange {
    let (req, head, tail) = match p {
        Proto::Resp => (
            format!("*2\r\n$3\r\nGET\r\n${}\r\n{KEY}\r\n", KEY.len()),
            format!("${}\r\n", VALUE.len()),
            "\r\n",
        ),
        Proto::Ascii => (
            format!("get {KEY}\r\n"),
            format!("VALUE {KEY} 0 {}\r\n", VALUE.len()),
            "\r\nEND\r\n",
        ),
    };
    let mut reply = head.into_bytes();
    reply.extend_from_slice(&VALUE);
    reply.extend_from_slice(tail.as_bytes());
    (req.into_bytes(), reply)
}

/// Connects to the forwarded port, retrying while QEMU's forward is not up (60 s at most).
fn connect(port: u16) -> Result<TcpStream, String> {
    let t = Instant::now();
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => {
                s.set_read_timeout(Some(Duration::from_secs(30)))
                    .map_err(|e| e.to_string())?;
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) if t.elapsed() > Duration::from_secs(60) => {
                return Err(format!("connect to 127.0.0.1:{port}: {e}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// One phase: a connection that runs `exchanges` `k` times, one at a time, then half-closes;
/// the guest's counters once it has printed them (the `n`-th line of the console).
fn phase(guest: &GuestVm, n: usize, exchanges: &[Exchange], k: u32) -> Result<Busy, String> {
    let mut s = connect(guest.port)?;
    let mut buf = Vec::new();
    for _ in 0..k {
        for (req, want) in exchanges {
            s.write_all(req).map_err(|e| format!("send: {e}"))?;
            buf.resize(want.len(), 0);
            s.read_exact(&mut buf)
                .map_err(|e| format!("reading a reply: {e}"))?;
            if buf != *want {
                return Err(format!(
                    "reply {:?} to {:?}, expected {:?}",
                    String::from_utf8_lossy(&buf),
                    String::from_utf8_lossy(req),
                    String::from_utf8_lossy(want)
                ));
            }
        }
    }
    s.shutdown(std::net::Shutdown::Write)
        .map_err(|e| e.to_string())?;
    let t = Instant::now();
    loop {
        if let Some(b) = busy_lines(&guest.console_text()).get(n) {
            // The guest closes after its output: read to the end so the close is done too.
            let _ = s.read_to_end(&mut buf);
            return Ok(*b);
        }
        if guest.is_finished() || t.elapsed() > Duration::from_secs(60) {
            return Err(format!(
                "the guest printed no busy counters after phase {n}:\n{}",
                guest.console_text()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The guest's memcached UDP port (`udp-port=`).
const GUEST_UDP_PORT: u16 = 11211;

/// A memcached UDP GET of [`KEY`] with request id `id` (8-byte frame header: id, sequence 0,
/// 1 datagram, reserved) and the exact reply datagram it must get.
fn udp_get(id: u16) -> Exchange {
    let header = |v: &mut Vec<u8>| {
        v.extend_from_slice(&id.to_be_bytes());
        v.extend_from_slice(&[0, 0, 0, 1, 0, 0]);
    };
    let mut req = Vec::new();
    header(&mut req);
    let (cmd, mut reply) = get(Proto::Ascii);
    req.extend_from_slice(&cmd);
    let mut framed = Vec::new();
    header(&mut framed);
    framed.append(&mut reply);
    (req, framed)
}

/// Sends `k` UDP GETs one at a time, each waiting for its reply (a lost one is sent again,
/// 3 times at most); how many were sent again.
fn udp_gets(s: &UdpSocket, k: u32) -> Result<u32, String> {
    let mut lost = 0;
    let mut buf = [0u8; 2048];
    for i in 0..k {
        let (req, want) = udp_get(i as u16);
        let mut tries = 0;
        loop {
            s.send(&req).map_err(|e| format!("UDP send: {e}"))?;
            match s.recv(&mut buf) {
                Ok(n) if buf[..n] == want[..] => break,
                Ok(n) => {
                    return Err(format!(
                        "UDP reply {:?}, expected {:?}",
                        String::from_utf8_lossy(&buf[..n]),
                        String::from_utf8_lossy(&want)
                    ));
                }
                Err(_) if tries < 3 => {
                    tries += 1;
                    lost += 1;
                }
                Err(e) => return Err(format!("no reply to a UDP GET after 4 tries: {e}")),
            }
        }
    }
    Ok(lost)
}

/// What the phases measured: each phase's counters minus the previous phase's.
struct Phases {
    empty: [Busy; 2],
    /// (protocol, GETs, SETs).
    ops: Vec<(Proto, Busy, Busy)>,
    /// K memcached UDP GETs plus an empty connection.
    udp_get: Busy,
    /// UDP GETs sent again after no reply came in 500 ms.
    udp_lost: u32,
}

/// Boots the guest under `microvm-icount` and runs the phases.
fn measure(image: &Path, o: &KvBenchOptions) -> Result<Phases, String> {
    let guest = GuestVm::boot(&GuestSpec {
        image,
        qemu: &o.qemu,
        cpus: 1,
        icount: true,
        tcp: true,
        guest_port: 6379,
        udp_port: Some(GUEST_UDP_PORT),
        args: vec![
            "busy-stats".into(),
            format!("idle-exit-ms={IDLE_EXIT_MS}"),
            format!("udp-port={GUEST_UDP_PORT}"),
        ],
        banner: "kv: listening",
    })?;
    let k = o.icount_ops;
    let protos = [Proto::Resp, Proto::Ascii];
    let udp = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let udp_port = guest.udp_port.ok_or("no UDP port forwarded")?;
    udp.connect(("127.0.0.1", udp_port))
        .map_err(|e| e.to_string())?;
    udp.set_read_timeout(Some(Duration::from_millis(500)))
        .map_err(|e| e.to_string())?;
    let mut n = 0;
    let mut last = Busy::default();
    let mut lost = 0;
    // A phase: `udp_k` memcached UDP GETs, then a connection running `exchanges` k times.
    let mut step = |udp_k: u32, exchanges: &[Exchange], k: u32| -> Result<Busy, String> {
        lost += udp_gets(&udp, udp_k)?;
        let b = phase(&guest, n, exchanges, k)?;
        n += 1;
        let d = b.minus(last);
        last = b;
        Ok(d)
    };
    step(0, &[set(Proto::Resp), get(Proto::Resp)], 1)?;
    step(1, &[set(Proto::Ascii), get(Proto::Ascii)], 1)?;
    let empty0 = step(0, &[], 0)?;
    let mut ops = Vec::new();
    for p in protos {
        let g = step(0, &[get(p)], k)?;
        let s = step(0, &[set(p)], k)?;
        ops.push((p, g, s));
    }
    // The UDP GETs' phase ends with an empty connection (its counters' line).
    let udp_get = step(k, &[], 0)?;
    let empty1 = step(0, &[], 0)?;
    guest.finish()?;
    Ok(Phases {
        empty: [empty0, empty1],
        ops,
        udp_get,
        udp_lost: lost,
    })
}

/// Per command of a phase of `k` commands, the mean empty connection `conn` subtracted.
fn per_op(phase: u64, conn: u64, k: u32) -> u64 {
    phase.saturating_sub(conn) / u64::from(k.max(1))
}

/// The instruction rows of `bench kv`.
pub(crate) fn rows(image: &Path, o: &KvBenchOptions) -> Vec<TextRow> {
    let k = o.icount_ops;
    let phases = measure(image, o);
    let names = |p: Proto| match p {
        Proto::Resp => ("icount-resp-get", "icount-resp-set", "RESP"),
        Proto::Ascii => ("icount-mc-get", "icount-mc-set", "memcached ASCII"),
    };
    let mut rows = Vec::new();
    let echo = resolve_image(&o.echo_app)
        .map_err(|e| e.to_string())
        .and_then(|img| crate::bench_udp::icount_per_frame(&img, &o.qemu, k));
    let ph = match phases {
        Ok(ph) => ph,
        Err(e) => {
            for p in [Proto::Resp, Proto::Ascii] {
                let (g, s, _) = names(p);
                for c in [g, s] {
                    rows.push(TextRow {
                        config: c,
                        outcome: Err(e.clone()),
                    });
                }
            }
            rows.push(TextRow {
                config: "icount-udp-get",
                outcome: Err(e.clone()),
            });
            rows.push(echo_row(echo, None, None));
            return rows;
        }
    };
    let [e0, e1] = ph.empty;
    let conn = Busy {
        events: (e0.events + e1.events) / 2,
        busy: (e0.busy + e1.busy) / 2,
        app: (e0.app + e1.app) / 2,
    };
    let mut resp_get = None;
    for (p, g, s) in &ph.ops {
        let (gname, sname, label) = names(*p);
        for (config, what, b) in [(gname, "GET", g), (sname, "SET", s)] {
            let insns = per_op(b.busy, conn.busy, k);
            if (*p, what) == (Proto::Resp, "GET") {
                resp_get = Some(insns);
            }
            rows.push(TextRow {
                config,
                outcome: Ok(format!(
                    "{insns} guest instructions per {what} ({label}, 64 B value; {} in kv app code, {:.2} events each; {k} over one connection)",
                    per_op(b.app, conn.app, k),
                    b.events.saturating_sub(conn.events) as f64 / f64::from(k)
                )),
            });
        }
    }
    let udp_get = per_op(ph.udp_get.busy, conn.busy, k);
    rows.push(TextRow {
        config: "icount-udp-get",
        outcome: Ok(format!(
            "{udp_get} guest instructions per GET (memcached UDP, 64 B value, codec included: the kernel's poll runs it; {k} one at a time, {} sent again)",
            ph.udp_lost
        )),
    });
    rows.push(TextRow {
        config: "icount-connection",
        outcome: Ok(format!(
            "{} guest instructions per connection without commands (accept + close; {} and {}), subtracted above",
            conn.busy, e0.busy, e1.busy
        )),
    });
    rows.push(echo_row(echo, resp_get, Some(udp_get)));
    rows
}

/// The UDP echo yardstick, with the GETs' ratios to it (RESP over TCP, memcached over UDP).
fn echo_row(echo: Result<u64, String>, resp_get: Option<u64>, udp_get: Option<u64>) -> TextRow {
    TextRow {
        config: "icount-udp-echo",
        outcome: echo.map(|n| {
            let x = |g: u64| g as f64 / n.max(1) as f64;
            let ratios = match (resp_get, udp_get) {
                (Some(t), Some(u)) => format!(
                    "; a memcached GET over UDP is {:.2}x it (goal: within 2x), a RESP GET over TCP {:.2}x",
                    x(u),
                    x(t)
                ),
                _ => String::new(),
            };
            format!("{n} guest instructions per received frame (apps/udp-echo, slirp){ratios}")
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_busy_lines() {
        let c = "kv: listening\nkv: busy: events 2 busy_ns 57049 app_ns 4110\nx\n\
                 kv: busy: events 6 busy_ns 118555 app_ns 9490\nkv: busy: nonsense\n";
        let b = busy_lines(c);
        assert_eq!(b.len(), 2);
        assert_eq!(
            b[1].minus(b[0]),
            Busy {
                events: 4,
                busy: 61506,
                app: 5380
            }
        );
    }

    #[test]
    fn exchanges_are_the_wire_format() {
        let (req, reply) = get(Proto::Ascii);
        assert_eq!(req, b"get ferrix:bench:key\r\n");
        assert!(reply.starts_with(b"VALUE ferrix:bench:key 0 64\r\nvvvv"));
        assert!(reply.ends_with(b"v\r\nEND\r\n"));
        let (req, reply) = set(Proto::Resp);
        assert!(req.starts_with(b"*3\r\n$3\r\nSET\r\n$16\r\nferrix:bench:key\r\n$64\r\nvv"));
        assert_eq!(reply, b"+OK\r\n");
        let (req, reply) = udp_get(0x0102);
        assert_eq!(&req[..8], &[1, 2, 0, 0, 0, 1, 0, 0]);
        assert_eq!(&req[8..], b"get ferrix:bench:key\r\n");
        assert!(reply.starts_with(b"\x01\x02\0\0\0\x01\0\0VALUE ferrix:bench:key 0 64\r\n"));
        assert_eq!(per_op(1000, 200, 8), 100);
        assert_eq!(per_op(100, 200, 8), 0);
    }
}
