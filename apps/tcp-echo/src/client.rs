//! tcp-echo's client mode (`client=IP:PORT`): `conns=N` connections (default 4), each sending
//! `rounds=M` 32-byte messages (default 10), one round every `interval-ms=K` (default 0), each
//! echo checked byte for byte, then closed. `crab=on` offers CRAB connection redirection
//! (`TcpConfig::crab_client`): a CRAB load balancer at IP then hands each connection to a
//! server, which this client talks to directly from the SYN-ACK on. Gives up after
//! `timeout-ms=` (default 30000).
//!
//! Prints `tcp-echo: client: N connections up` once they are, then `tcp-echo: client: N of N connections, R rounds echoed, redirected K (IP=n ...)`
//! and exits 0 when every echo came back right; otherwise what went wrong, exit 1.

extern crate alloc;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddrV4};
use ferrix::net::tcp::{ConnId, TcpConfig, TcpEvent};
use ferrix::println;

const MSG: usize = 32;

struct Conn {
    id: ConnId,
    up: bool,
    got: Vec<u8>,
}

fn message(conn: usize, round: u32) -> [u8; MSG] {
    let mut m = [b'.'; MSG];
    let text = alloc::format!("conn {conn} round {round}");
    let n = text.len().min(MSG - 1);
    m[..n].copy_from_slice(&text.as_bytes()[..n]);
    m[MSG - 1] = b'\n';
    m
}

fn fail(what: alloc::string::String) -> ! {
    println!("tcp-echo: client: {what}");
    ferrix::exit(1)
}

/// Runs the client against `server` (core 0; the others idle).
pub fn run(server: SocketAddrV4, arg: impl Fn(&str) -> Option<u64>, crab: bool) -> ! {
    let conns = arg("conns").unwrap_or(4).clamp(1, 256) as usize;
    let rounds = arg("rounds").unwrap_or(10).clamp(1, 1_000_000) as u32;
    let interval_ns = arg("interval-ms").unwrap_or(0).saturating_mul(1_000_000);
    let deadline = ferrix::time::now_ns().saturating_add(
        arg("timeout-ms")
            .unwrap_or(30_000)
            .saturating_mul(1_000_000),
    );
    let cfg = TcpConfig {
        port: 0,
        max_conns: conns + 8,
        crab_client: crab,
        ..TcpConfig::default()
    };
    ferrix::or_exit("tcp-echo: client", ferrix::net::tcp_listen(cfg));
    let mut cs: Vec<Conn> = Vec::with_capacity(conns);
    for _ in 0..conns {
        let id = ferrix::or_exit(
            "tcp-echo: client",
            ferrix::net::with_tcp(|ep| ep.connect(*server.ip(), server.port())),
        );
        match id {
            Ok(id) => cs.push(Conn {
                id,
                up: false,
                got: Vec::new(),
            }),
            Err(e) => fail(alloc::format!("connect: {e:?}")),
        }
    }
    let (mut round, mut next_at, mut closed) = (0u32, 0u64, 0usize);
    let mut all_up = false;
    let mut redirected: BTreeMap<Ipv4Addr, usize> = BTreeMap::new();
    loop {
        let polled = ferrix::net::poll_tcp(
            |_, _| None,
            |ep, ev| match ev {
                TcpEvent::Connected(c) => {
                    if let Some(k) = cs.iter_mut().find(|k| k.id == c) {
                        k.up = true;
                        if let Some(ip) = ep.redirected_to(c) {
                            *redirected.entry(ip).or_default() += 1;
                        }
                    }
                }
                TcpEvent::Received(c, _) => {
                    if let (Some(k), Ok(data)) = (cs.iter_mut().find(|k| k.id == c), ep.recv(c)) {
                        let n = data.len();
                        k.got.extend_from_slice(data);
                        let _ = ep.recv_done(c, n);
                    }
                }
                TcpEvent::Closed(c) if cs.iter().any(|k| k.id == c) => closed += 1,
                _ => {}
            },
        );
        ferrix::or_exit("tcp-echo: client", polled);
        let now = ferrix::time::now_ns();
        if now > deadline {
            let up = cs.iter().filter(|k| k.up).count();
            fail(alloc::format!(
                "timed out in round {round} of {rounds}: {up} of {conns} connections up, {closed} closed"
            ));
        }
        if closed == conns {
            break;
        }
        if !cs.iter().all(|k| k.up) {
            continue;
        }
        if !all_up {
            all_up = true;
            println!("tcp-echo: client: {conns} connections up");
        }
        // Every echo of the rounds so far back?
        let want = round as usize * MSG;
        if cs.iter().any(|k| k.got.len() < want) {
            continue;
        }
        for (i, k) in cs.iter().enumerate() {
            for r in 0..round {
                let at = r as usize * MSG;
                if k.got.get(at..at + MSG) != Some(&message(i, r)[..]) {
                    fail(alloc::format!("connection {i}: round {r} echoed wrong"));
                }
            }
        }
        if round == rounds {
            if closed == 0 && cs.iter().all(|k| k.got.len() == want) {
                let ids: Vec<ConnId> = cs.iter().map(|k| k.id).collect();
                let _ = ferrix::net::with_tcp(|ep| {
                    for c in ids {
                        let _ = ep.close(c);
                    }
                });
                round += 1; // closing
            }
            continue;
        }
        if round > rounds || now < next_at {
            continue;
        }
        let sent = ferrix::net::with_tcp(|ep| {
            cs.iter()
                .enumerate()
                .all(|(i, k)| ep.send(k.id, &message(i, round)) == Ok(MSG))
        });
        if sent != Ok(true) {
            fail(alloc::format!("round {round}: a send did not fit"));
        }
        round += 1;
        next_at = now.saturating_add(interval_ns);
    }
    let spread: Vec<alloc::string::String> = redirected
        .iter()
        .map(|(ip, n)| alloc::format!("{ip}={n}"))
        .collect();
    println!(
        "tcp-echo: client: {conns} of {conns} connections, {rounds} rounds echoed, redirected {} ({})",
        redirected.values().sum::<usize>(),
        spread.join(" ")
    );
    ferrix::exit(0)
}
