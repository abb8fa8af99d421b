//! Echo rounds: `--conns N` connections, `--rounds M` 32-byte messages each, `--interval-ms K`
//! apart, every echo checked byte for byte, then closed.

use crate::{Args, MSG, TapQueue, now};
use ferrix_net::IfConfig;
use ferrix_net::tcp::{ConnId, TcpConfig, TcpEndpoint, TcpError, TcpEvent};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant as Clock};

fn message(conn: usize, round: u32) -> [u8; MSG] {
    let mut m = [b'.'; MSG];
    let text = format!("conn {conn} round {round}");
    m[..text.len().min(MSG - 1)].copy_from_slice(&text.as_bytes()[..text.len().min(MSG - 1)]);
    m[MSG - 1] = b'\n';
    m
}

/// Runs the rounds on `q`.
pub(crate) fn run(a: &Args, ifc: &IfConfig, mut q: TapQueue) -> Result<String, String> {
    let start = Clock::now();
    let cfg = TcpConfig {
        max_conns: a.conns + 8,
        crab_client: a.crab,
        slo_client: a.slo,
        ..TcpConfig::default()
    };
    let mut ep = TcpEndpoint::new(ifc, cfg, &mut q, now(start));
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
