//! `ferrix bench kv`'s instruction counts: guest instructions per GET and per SET of a
//! 64-byte value under QEMU `-icount shift=0` (`--profile microvm-icount`), where a guest ns
//! is one guest instruction.
//!
//! The guest (one vCPU) runs with `busy-stats`: whenever a client half-closes, it prints the
//! scheduler's busy counters (`kv: busy: events E busy_ns B app_ns A`; busy time counts only
//! loop turns that did something: driver, TCP, scheduler and app, not idle polling). The bench
//! talks to it in phases, one TCP connection each, closed loop (one command outstanding, every
//! reply checked byte for byte), and waits for the guest's line after each: two warm-up phases
//! (the key stored, RESP and memcached ASCII), an empty connection, K GETs and K SETs per
//! protocol, another empty connection. A phase's instructions are the difference of two
//! consecutive lines; its per-command figure subtracts the mean of the two empty connections
//! (connect, close and the counters' own line) and divides by K. (A line leaves out the loop
//! turn that prints it; that turn lands in the next phase, the same in every phase.)
//!
//! The UDP echo app's instructions per received frame under the same profile is the yardstick
//! (issue 12: a 64-byte GET within 2x of it; the kv guest serves GETs over TCP only so far, so
//! the ratio shown is for TCP, which also carries the ACKs of each exchange).

use crate::bench_guest::{GuestSpec, GuestVm};
use crate::bench_kv::KvBenchOptions;
use crate::bench_report::TextRow;
use crate::run::resolve_image;
use std::io::{Read, Write};
use std::net::TcpStream;
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

/// What the phases measured: each phase's counters minus the previous phase's.
struct Phases {
    empty: [Busy; 2],
    /// (protocol, GETs, SETs).
    ops: Vec<(Proto, Busy, Busy)>,
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
        args: vec!["busy-stats".into(), format!("idle-exit-ms={IDLE_EXIT_MS}")],
        banner: "kv: listening",
    })?;
    let k = o.icount_ops;
    let protos = [Proto::Resp, Proto::Ascii];
    let mut n = 0;
    let mut last = Busy::default();
    let mut step = |exchanges: &[Exchange], k: u32| -> Result<Busy, String> {
        let b = phase(&guest, n, exchanges, k)?;
        n += 1;
        let d = b.minus(last);
        last = b;
        Ok(d)
    };
    for p in protos {
        step(&[set(p), get(p)], 1)?;
    }
    let empty0 = step(&[], 0)?;
    let mut ops = Vec::new();
    for p in protos {
        let g = step(&[get(p)], k)?;
        let s = step(&[set(p)], k)?;
        ops.push((p, g, s));
    }
    let empty1 = step(&[], 0)?;
    guest.finish()?;
    Ok(Phases {
        empty: [empty0, empty1],
        ops,
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
            rows.push(echo_row(echo, None));
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
    rows.push(TextRow {
        config: "icount-connection",
        outcome: Ok(format!(
            "{} guest instructions per connection without commands (accept + close; {} and {}), subtracted above",
            conn.busy, e0.busy, e1.busy
        )),
    });
    rows.push(echo_row(echo, resp_get));
    rows
}

/// The UDP echo yardstick, with the RESP GET's ratio to it.
fn echo_row(echo: Result<u64, String>, resp_get: Option<u64>) -> TextRow {
    TextRow {
        config: "icount-udp-echo",
        outcome: echo.map(|n| {
            let ratio = resp_get
                .map(|g| {
                    format!(
                        "; a RESP GET over TCP is {:.2}x it (goal: a GET within 2x)",
                        g as f64 / n.max(1) as f64
                    )
                })
                .unwrap_or_default();
            format!("{n} guest instructions per received frame (apps/udp-echo, slirp){ratio}")
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
        assert_eq!(per_op(1000, 200, 8), 100);
        assert_eq!(per_op(100, 200, 8), 0);
    }
}
