//! Open-loop load (`--rate R`), the client of the thesis's SLO experiments (8.5): requests
//! arrive as a Poisson process at R per second for `--duration-ms`, each on a random
//! connection. A request is a 32-byte message `SVC ` + the service time in µs (u32 LE, drawn
//! from `--dist` around `--service-us`; `REQ ` and the server's default when 0) + a sequence
//! number; the tcp-echo queueing server (`service-us=`) serves it and echoes it.
//!
//! With `--slo` a request goes to the first connection from the random one whose budget has a
//! token (`send_request`); when none has, the request is dropped at once and counted refused
//! (the thesis's extreme case: no waiting for a connection). Without `--slo`, requests queue
//! in TCP as usual. Latency is measured from the request's scheduled arrival (not from when
//! the loop got to it) to the last byte of its echo; every echo is checked.

use crate::{Args, Dist, MSG, TapQueue, now};
use ferrix_net::IfConfig;
use ferrix_net::tcp::{ConnId, TcpConfig, TcpEndpoint, TcpError, TcpEvent};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant as Clock};

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// Exponential with mean `m`.
    fn exp(&mut self, m: f64) -> f64 {
        -self.unit().ln() * m
    }
}

/// The service time (µs) of one request.
fn service(d: Dist, mean_us: u32, rng: &mut Rng) -> u32 {
    let m = f64::from(mean_us);
    let us = match d {
        Dist::Fixed => m,
        Dist::Exp => rng.exp(m),
        Dist::Bimodal if rng.unit() <= 0.9 => m / 2.0,
        Dist::Bimodal => m * 5.5,
    };
    us.round().min(1e6) as u32
}

fn request(seq: u64, service_us: u32) -> [u8; MSG] {
    let mut m = [b'.'; MSG];
    m[..4].copy_from_slice(if service_us > 0 { b"SVC " } else { b"REQ " });
    m[4..8].copy_from_slice(&service_us.to_le_bytes());
    m[8..16].copy_from_slice(&seq.to_le_bytes());
    m[MSG - 1] = b'\n';
    m
}

struct Conn {
    id: ConnId,
    up: bool,
    /// Bytes the send buffer did not take yet.
    out: Vec<u8>,
    /// Requests sent and not answered: scheduled arrival (ns from the start) and bytes.
    inflight: VecDeque<(u64, [u8; MSG])>,
    got: Vec<u8>,
}

/// The `q`-quantile of sorted `v`.
fn quantile(v: &[u64], q: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v[((v.len() as f64 * q) as usize).min(v.len() - 1)]
}

/// Runs the open loop on `q`.
pub(crate) fn run(a: &Args, ifc: &IfConfig, mut q: TapQueue) -> Result<String, String> {
    let rate = a
        .rate
        .filter(|r| r.is_finite() && *r > 0.0 && *r <= 1e6)
        .ok_or("--rate: want 0 < R <= 1000000 requests/s")?;
    let start = Clock::now();
    let elapsed = |start: Clock| start.elapsed().as_nanos() as u64;
    let n = a.conns.clamp(1, 1024);
    let cfg = TcpConfig {
        max_conns: n + 8,
        crab_client: a.crab,
        slo_client: a.slo,
        ..TcpConfig::default()
    };
    let mut ep = TcpEndpoint::new(ifc, cfg, &mut q, now(start));
    let mut conns = Vec::with_capacity(n);
    let mut index: HashMap<ConnId, usize> = HashMap::new();
    for i in 0..n {
        let id = ep
            .connect(*a.connect.ip(), a.connect.port())
            .map_err(|e| format!("connect: {e:?}"))?;
        index.insert(id, i);
        conns.push(Conn {
            id,
            up: false,
            out: Vec::new(),
            inflight: VecDeque::new(),
            got: Vec::new(),
        });
    }
    let deadline = elapsed(start) + a.timeout_ms.saturating_mul(1_000_000);
    let duration = a.duration_ms.saturating_mul(1_000_000);
    let mut rng = Rng(a.seed);
    // Offering starts once every connection is up (`offer_start`, ns from `start`).
    let mut offer_start: Option<u64> = None;
    let mut next_at = 0u64; // ns after offer_start
    let (mut offered, mut sent, mut refused, mut closed, mut closing) =
        (0u64, 0u64, 0u64, 0, false);
    let mut lat: Vec<u64> = Vec::new();
    let mut events = Vec::new();
    loop {
        let t = elapsed(start);
        events.clear();
        ep.poll(now(start), &mut q, &mut events);
        for &ev in &events {
            let Some(&i) = index.get(match &ev {
                TcpEvent::Accepted(c)
                | TcpEvent::Connected(c)
                | TcpEvent::Received(c, _)
                | TcpEvent::Sent(c, _)
                | TcpEvent::PeerClosed(c)
                | TcpEvent::Closed(c) => c,
            }) else {
                continue;
            };
            let c = &mut conns[i];
            match ev {
                TcpEvent::Connected(_) => c.up = true,
                TcpEvent::Received(..) => {
                    let data = ep.recv(c.id).map_err(|e| format!("{e:?}"))?.to_vec();
                    ep.recv_done(c.id, data.len())
                        .map_err(|e| format!("{e:?}"))?;
                    c.got.extend_from_slice(&data);
                    while c.got.len() >= MSG {
                        let Some((at, m)) = c.inflight.pop_front() else {
                            return Err(format!("connection {i}: an echo nobody asked for"));
                        };
                        if c.got[..MSG] != m {
                            return Err(format!("connection {i}: a request echoed wrong"));
                        }
                        c.got.drain(..MSG);
                        lat.push(t.saturating_sub(offer_start.unwrap_or(0) + at));
                    }
                }
                TcpEvent::PeerClosed(_) => {
                    let _ = ep.close(c.id);
                }
                TcpEvent::Closed(_) => {
                    if !closing {
                        return Err(format!("connection {i} closed by the server"));
                    }
                    closed += 1;
                }
                _ => {}
            }
        }
        if t > deadline {
            let up = conns.iter().filter(|c| c.up).count();
            let waiting: usize = conns.iter().map(|c| c.inflight.len()).sum();
            return Err(format!(
                "timed out: {up} of {n} connections up, {waiting} requests unanswered"
            ));
        }
        if closing && closed == n {
            break;
        }
        if offer_start.is_none() && conns.iter().all(|c| c.up) {
            offer_start = Some(t);
        }
        if let Some(s0) = offer_start {
            // Every arrival due by now (scheduled, not when the loop got here).
            while next_at < duration && s0 + next_at <= t {
                offered += 1;
                let m = request(offered, service(a.dist, a.service_us, &mut rng));
                let first = (rng.next() % n as u64) as usize;
                let mut placed = false;
                for k in 0..n {
                    let c = &mut conns[(first + k) % n];
                    if !a.slo {
                        // Plain TCP: the random connection takes it, behind what is unsent.
                        c.out.extend_from_slice(&m);
                    } else if !c.out.is_empty() {
                        continue;
                    } else {
                        match ep.send_request(c.id, &m) {
                            Ok(took) => c.out.extend_from_slice(&m[took..]),
                            Err(TcpError::NoTokens | TcpError::Silent(_)) => continue,
                            Err(e) => return Err(format!("send: {e:?}")),
                        }
                    }
                    c.inflight.push_back((next_at, m));
                    placed = true;
                    break;
                }
                if placed {
                    sent += 1;
                } else {
                    refused += 1;
                }
                next_at += (rng.exp(1e9 / rate) as u64).max(1);
            }
            let idle = conns
                .iter()
                .all(|c| c.inflight.is_empty() && c.out.is_empty());
            if next_at >= duration && idle && !closing {
                for c in &conns {
                    let _ = ep.close(c.id);
                }
                closing = true;
            }
        }
        for c in conns.iter_mut().filter(|c| !c.out.is_empty()) {
            match ep.send(c.id, &c.out) {
                Ok(k) => {
                    c.out.drain(..k);
                }
                Err(e) => return Err(format!("send: {e:?}")),
            }
        }
        ep.flush(now(start), &mut q);
        std::thread::sleep(Duration::from_micros(20));
    }
    lat.sort_unstable();
    let us = |q: f64| quantile(&lat, q) / 1000;
    let secs = duration as f64 / 1e9;
    let s = ep.slo_stats();
    Ok(format!(
        "ferrix-tcp-client: open loop: offered {offered} at {rate:.0}/s for {} ms, sent {sent}, refused {refused} ({:.1}%), answered {}, achieved {:.0}/s, latency p50 {} us p99 {} us p999 {} us max {} us, slo windows_read {} refused_no_tokens {} refused_silent {}, send_errors {}",
        a.duration_ms,
        100.0 * refused as f64 / offered.max(1) as f64,
        lat.len(),
        lat.len() as f64 / secs.max(1e-9),
        us(0.5),
        us(0.99),
        us(0.999),
        lat.last().copied().unwrap_or(0) / 1000,
        s.windows_read,
        s.refused_no_tokens,
        s.refused_silent,
        q.send_errors
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_times_have_the_asked_mean() {
        let mut rng = Rng(7);
        for d in [Dist::Fixed, Dist::Exp, Dist::Bimodal] {
            let n = 20_000;
            let sum: u64 = (0..n).map(|_| u64::from(service(d, 100, &mut rng))).sum();
            let mean = sum as f64 / n as f64;
            assert!((mean - 100.0).abs() < 4.0, "{d:?}: mean {mean}");
        }
        let fixed: Vec<u32> = (0..10)
            .map(|_| service(Dist::Fixed, 37, &mut rng))
            .collect();
        assert!(fixed.iter().all(|&s| s == 37));
    }

    #[test]
    fn requests_carry_their_service_and_sequence() {
        let m = request(0x0102_0304_0506_0708, 500);
        assert_eq!(&m[..4], b"SVC ");
        assert_eq!(u32::from_le_bytes(m[4..8].try_into().unwrap()), 500);
        assert_eq!(
            u64::from_le_bytes(m[8..16].try_into().unwrap()),
            0x0102_0304_0506_0708
        );
        assert_eq!(&request(1, 0)[..4], b"REQ ");
        assert_ne!(request(1, 5), request(2, 5));
    }
}
