//! `ferrix-tcp-client`: ferrix's TCP client (the `ferrix-net` endpoint, smoltcp inside) as a
//! Linux user-space program on a TAP device, so a Linux host can be a CRAB client and an
//! SLO-aware client without kernel changes. The TAP is a host of its own on whatever the TAP
//! is plugged into (a bridge port, typically): it has its own MAC and address, and the Linux
//! kernel never sees its connections.
//!
//! Echo rounds (the tcp-echo guest's client): `--conns N` connections to `--connect IP:PORT`,
//! `--rounds M` 32-byte messages each, `--interval-ms K` apart, every echo checked.
//! `--crab` offers connection redirection; `--slo` reads the server's window as tokens and
//! sends with `send_request` (a refused send is counted and retried at the next round).
//!
//! Needs CAP_NET_ADMIN (to attach to the TAP); run it inside a network namespace.

use clap::Parser;
use ferrix_net::tcp::{ConnId, FrameQueue, Instant, TcpConfig, TcpEndpoint, TcpError, TcpEvent};
use ferrix_net::{IfConfig, MacAddr};
use ferrix_shim::net::backend::Backend;
use ferrix_shim::net::tap::Tap;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::ExitCode;
use std::time::{Duration, Instant as Clock};

#[derive(Parser)]
#[command(
    name = "ferrix-tcp-client",
    about = "ferrix's TCP client on a TAP device"
)]
struct Args {
    /// The TAP device (created if missing).
    #[arg(long)]
    tap: String,
    /// This client's address, A.B.C.D/N.
    #[arg(long)]
    ip: String,
    /// This client's MAC.
    #[arg(long, default_value = "02:00:00:00:00:fe")]
    mac: String,
    /// The server (or a CRAB load balancer's VIP).
    #[arg(long)]
    connect: SocketAddrV4,
    #[arg(long, default_value_t = 4)]
    conns: usize,
    #[arg(long, default_value_t = 10)]
    rounds: u32,
    #[arg(long, default_value_t = 0)]
    interval_ms: u64,
    /// Offer CRAB connection redirection.
    #[arg(long)]
    crab: bool,
    /// SLO-aware flow control: spend the server's tokens.
    #[arg(long)]
    slo: bool,
    #[arg(long, default_value_t = 30_000)]
    timeout_ms: u64,
}

/// The TAP as the endpoint's frame queue.
struct TapQueue {
    tap: Tap,
    buf: Vec<u8>,
    send_errors: u64,
}

impl FrameQueue for TapQueue {
    type RxFrame = Vec<u8>;

    fn receive(&mut self) -> Option<Vec<u8>> {
        match self.tap.recv(&mut self.buf) {
            Ok(Some(n)) => Some(self.buf[..n].to_vec()),
            _ => None,
        }
    }

    fn transmit<R, F: FnOnce(&mut [u8]) -> R>(&mut self, len: usize, fill: F) -> R {
        let mut f = vec![0u8; len];
        let r = fill(&mut f);
        if self.tap.send(&f).is_err() {
            self.send_errors += 1;
        }
        r
    }
}

const MSG: usize = 32;

fn message(conn: usize, round: u32) -> [u8; MSG] {
    let mut m = [b'.'; MSG];
    let text = format!("conn {conn} round {round}");
    m[..text.len().min(MSG - 1)].copy_from_slice(&text.as_bytes()[..text.len().min(MSG - 1)]);
    m[MSG - 1] = b'\n';
    m
}

fn parse_ifc(a: &Args) -> Result<IfConfig, String> {
    let (ip, prefix) =
        a.ip.split_once('/')
            .ok_or_else(|| format!("--ip {}: want A.B.C.D/N", a.ip))?;
    let ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("--ip {}: bad address", a.ip))?;
    let prefix_len: u8 = prefix
        .parse()
        .ok()
        .filter(|p| (1..=32).contains(p))
        .ok_or_else(|| format!("--ip {}: bad prefix length", a.ip))?;
    let bytes: Vec<u8> = a
        .mac
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<Result<_, _>>()
        .map_err(|_| format!("--mac {}: not a MAC", a.mac))?;
    let mac = MacAddr(
        bytes
            .try_into()
            .map_err(|_| format!("--mac {}: six bytes", a.mac))?,
    );
    if mac.is_multicast() {
        return Err(format!("--mac {}: a multicast address", a.mac));
    }
    Ok(IfConfig {
        mac,
        ip,
        prefix_len,
        gateway: None,
        mtu: 1500,
    })
}

fn run(a: Args) -> Result<String, String> {
    let ifc = parse_ifc(&a)?;
    let tap = Tap::open(&a.tap).map_err(|e| e.to_string())?;
    let mut q = TapQueue {
        tap,
        buf: vec![0u8; 65536],
        send_errors: 0,
    };
    let start = Clock::now();
    let now = |start: Clock| Instant::from_micros(start.elapsed().as_micros() as i64);
    let cfg = TcpConfig {
        max_conns: a.conns + 8,
        crab_client: a.crab,
        slo_client: a.slo,
        ..TcpConfig::default()
    };
    let mut ep = TcpEndpoint::new(&ifc, cfg, &mut q, now(start));
    let conns = a.conns.clamp(1, 1024);
    let ids: Vec<ConnId> = (0..conns)
        .map(|_| ep.connect(*a.connect.ip(), a.connect.port()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("connect: {e:?}"))?;
    let mut got: BTreeMap<ConnId, Vec<u8>> = BTreeMap::new();
    let mut sent: BTreeMap<ConnId, u32> = BTreeMap::new();
    let (mut up, mut closed, mut refused) = (0usize, 0usize, 0u64);
    let mut redirected: BTreeMap<Ipv4Addr, usize> = BTreeMap::new();
    let (mut next_round, mut closing) = (Clock::now(), false);
    let deadline = Clock::now() + Duration::from_millis(a.timeout_ms);
    let mut events = Vec::new();
    loop {
        let t = now(start);
        events.clear();
        ep.poll(t, &mut q, &mut events);
        for &ev in &events {
            match ev {
                TcpEvent::Connected(c) => {
                    up += 1;
                    if let Some(ip) = ep.redirected_to(c) {
                        *redirected.entry(ip).or_default() += 1;
                    }
                }
                TcpEvent::Received(c, _) => {
                    let data = ep.recv(c).map_err(|e| format!("{e:?}"))?.to_vec();
                    ep.recv_done(c, data.len()).map_err(|e| format!("{e:?}"))?;
                    got.entry(c).or_default().extend_from_slice(&data);
                }
                TcpEvent::PeerClosed(c) => {
                    let _ = ep.close(c);
                }
                TcpEvent::Closed(_) => closed += 1,
                _ => {}
            }
        }
        if Clock::now() > deadline {
            return Err(format!(
                "timed out: {up} of {conns} connections up, {closed} closed, {refused} sends refused"
            ));
        }
        if closed == conns {
            break;
        }
        let all_echoed = ids.iter().all(|c| {
            let s = sent.get(c).copied().unwrap_or(0) as usize;
            got.get(c).map_or(0, Vec::len) >= s * MSG
        });
        if up == conns && all_echoed && !closing {
            for (i, c) in ids.iter().enumerate() {
                let g = got.get(c).map_or(&[][..], Vec::as_slice);
                for (r, chunk) in g.chunks(MSG).enumerate() {
                    if chunk != message(i, r as u32) {
                        return Err(format!("connection {i}: round {r} echoed wrong"));
                    }
                }
            }
            if ids
                .iter()
                .all(|c| sent.get(c).copied().unwrap_or(0) >= a.rounds)
            {
                for &c in &ids {
                    let _ = ep.close(c);
                }
                closing = true;
            } else if Clock::now() >= next_round {
                for (i, &c) in ids.iter().enumerate() {
                    let r = sent.get(&c).copied().unwrap_or(0);
                    if r >= a.rounds {
                        continue;
                    }
                    match ep.send_request(c, &message(i, r)) {
                        Ok(MSG) => {
                            sent.insert(c, r + 1);
                        }
                        Ok(_) => return Err("a partial send".into()),
                        Err(TcpError::NoTokens | TcpError::Silent(_)) => refused += 1,
                        Err(e) => return Err(format!("send: {e:?}")),
                    }
                }
                next_round = Clock::now() + Duration::from_millis(a.interval_ms);
            }
        }
        ep.flush(now(start), &mut q);
        std::thread::sleep(Duration::from_micros(50));
    }
    let spread: Vec<String> = redirected
        .iter()
        .map(|(ip, n)| format!("{ip}={n}"))
        .collect();
    let cs = ep.crab_stats();
    Ok(format!(
        "ferrix-tcp-client: {conns} of {conns} connections, {} rounds echoed, redirected {} ({}), refused {refused}, forged_redirects {}, send_errors {}",
        a.rounds,
        redirected.values().sum::<usize>(),
        spread.join(" "),
        cs.forged_redirects,
        q.send_errors
    ))
}

/// The command: parses the arguments, runs, prints the result line; exit 1 on failure.
pub fn main_cli() -> ExitCode {
    match run(Args::parse()) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ferrix-tcp-client: {e}");
            ExitCode::FAILURE
        }
    }
}
