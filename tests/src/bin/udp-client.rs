//! A Linux UDP echo client for the tests: `udp-client HOST:PORT COUNT FLOWS [TIMEOUT_S
//! [ports=P1,P2,...]]` (with `ports=`, one flow from each of those source ports instead of
//! FLOWS ephemeral ones), or `udp-client --fire HOST:PORT COUNT [SRC_PORT]` to send COUNT
//! datagrams 10 ms apart without waiting for anything (the tests use it to push an
//! `exit-after=N` server over its count).
//! Sends COUNT datagrams round-robin from FLOWS sockets (distinct source ports, so RSS can
//! spread them over queues), each with a unique payload, and checks every echo. Retries a
//! datagram up to 5 times (the guest may still be booting). Prints `ok COUNT` and exits 0, or
//! says what went wrong and exits 1.
#![forbid(unsafe_code)]

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--fire") {
        let dst: SocketAddr = args.get(2).and_then(|a| a.parse().ok()).expect("HOST:PORT");
        let n: usize = args.get(3).and_then(|a| a.parse().ok()).expect("COUNT");
        let port: u16 = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(0);
        let s =
            UdpSocket::bind((if dst.is_ipv4() { "0.0.0.0" } else { "::" }, port)).expect("bind");
        for _ in 0..n {
            let _ = s.send_to(b"ferrix filler", dst);
            std::thread::sleep(Duration::from_millis(10));
        }
        return;
    }
    if args.len() < 4 {
        eprintln!("usage: udp-client HOST:PORT COUNT FLOWS [TIMEOUT_S]");
        std::process::exit(2);
    }
    let dst: SocketAddr = args[1].parse().expect("HOST:PORT");
    let count: usize = args[2].parse().expect("COUNT");
    let limit = Duration::from_secs(args.get(4).and_then(|s| s.parse().ok()).unwrap_or(60));
    let ports: Vec<u16> = match args.get(5).and_then(|a| a.strip_prefix("ports=")) {
        Some(list) => list
            .split(',')
            .map(|p| p.parse().expect("ports=P1,P2,..."))
            .collect(),
        None => vec![0; args[3].parse::<usize>().expect("FLOWS").max(1)],
    };
    let flows = ports.len().max(1);
    let host = if dst.is_ipv4() { "0.0.0.0" } else { "::" };
    let socks: Vec<UdpSocket> = ports
        .iter()
        .map(|&port| {
            let s = UdpSocket::bind((host, port)).expect("bind");
            s.set_read_timeout(Some(Duration::from_millis(500)))
                .expect("timeout");
            s
        })
        .collect();
    let start = Instant::now();
    let mut buf = [0u8; 2048];
    for i in 0..count {
        let s = &socks[i % flows];
        let msg = format!("ferrix echo {i} {}", "x".repeat(i % 200));
        let mut ok = false;
        for _ in 0..5 {
            if start.elapsed() > limit {
                eprintln!("udp-client: time limit reached after {i} echoes");
                std::process::exit(1);
            }
            s.send_to(msg.as_bytes(), dst).expect("send");
            // Read until our echo arrives or the socket times out; late echoes of earlier
            // retries are skipped, anything else is an error.
            loop {
                match s.recv_from(&mut buf) {
                    Ok((n, from)) if from == dst && &buf[..n] == msg.as_bytes() => {
                        ok = true;
                        break;
                    }
                    Ok((n, from)) if from == dst && buf[..n].starts_with(b"ferrix echo ") => {
                        continue;
                    }
                    Ok((n, from)) => {
                        eprintln!(
                            "udp-client: unexpected datagram from {from}: {:?}",
                            String::from_utf8_lossy(&buf[..n])
                        );
                        std::process::exit(1);
                    }
                    Err(_) => break,
                }
            }
            if ok {
                break;
            }
        }
        if !ok {
            eprintln!("udp-client: no echo for datagram {i} after 5 tries");
            std::process::exit(1);
        }
    }
    println!("ok {count}");
}
