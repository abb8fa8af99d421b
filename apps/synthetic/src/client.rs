//! Client mode (`client=A.B.C.D:P count=N size=S`): core 0 sends N R2P2 echo requests of S
//! bytes, one at a time, to a server (e.g. Linux's `r2p2-server`) and exits 0 once every one
//! of them completed exactly once, successfully, with the reply equal to the request; 1
//! otherwise. Before the N requests, warm-up requests (not counted) are sent until one
//! succeeds, so ARP resolution and a server still starting do not count as failures.
//!
//! Replies must reach core 0's queue: run client mode with one vCPU (other cores idle).

use crate::arg;
use alloc::vec;
use alloc::vec::Vec;
use core::net::SocketAddrV4;
use ferrix::net::r2p2::{GuestClock, GuestTransport};
use ferrix::println;
use ferrix_net::r2p2::{Client, ClientConfig, Outcome, Policy};

/// How long warm-up may take (ARP, the server starting), ns.
const WARMUP_NS: u64 = 30_000_000_000;
/// How long the client keeps listening after the last completion, to catch a second
/// completion of any request, ns.
const DRAIN_NS: u64 = 100_000_000;
/// Context of warm-up requests (the measured ones carry their index).
const WARMUP: u64 = u64::MAX;

/// Runs client mode on core 0 against `server`; never returns.
pub fn run(server: SocketAddrV4) -> ! {
    let count: u64 = arg("count").unwrap_or(10);
    let size: usize = arg("size").unwrap_or(64);
    let local: u16 = arg("client-port").unwrap_or(9100);
    let timeout_ns = arg::<u64>("timeout-ms").unwrap_or(1000) * 1_000_000;
    let sack = arg::<u8>("sack").is_some_and(|v| v != 0);
    if let Err(e) = ferrix::net::bind_udp(local) {
        println!("synthetic: client: port {local}: {e}");
        ferrix::exit(1);
    }
    let mut transport = GuestTransport::default();
    transport.set_port(local);
    let cfg = ClientConfig {
        sack,
        ..ClientConfig::default()
    };
    let mut client = Client::new(transport, GuestClock, cfg);
    // The first 8 bytes (a synthetic server's service time) are 0.
    let payload: Vec<u8> = (0..size)
        .map(|i| if i < 8 { 0 } else { (i * 7 + 3) as u8 })
        .collect();

    // Warm-up: one request at a time until one succeeds.
    let deadline = ferrix::time::now_ns().saturating_add(WARMUP_NS);
    let mut warm = false;
    while !warm {
        if ferrix::time::now_ns() > deadline {
            println!("synthetic: client: {server} never answered");
            ferrix::exit(1);
        }
        if client
            .send_request(server, &payload, Policy::LbRoute, 500_000_000, WARMUP)
            .is_err()
        {
            println!("synthetic: client: request of {size} B cannot be sent");
            ferrix::exit(1);
        }
        while client.in_flight() > 0 {
            step(&mut client);
        }
        while let Some(c) = client.next_completion() {
            warm |= matches!(c.outcome, Outcome::Success(_));
        }
    }

    // The measured requests: completions per request, and how they ended.
    let mut completions = vec![0u8; usize::try_from(count).unwrap_or(0)];
    let (mut ok, mut timeouts, mut errors, mut mismatches, mut stray) = (0u64, 0, 0, 0, 0);
    let mut not_started = 0u64;
    let mut record = |c: ferrix_net::r2p2::Completion| {
        let Some(n) = usize::try_from(c.ctx)
            .ok()
            .and_then(|i| completions.get_mut(i))
        else {
            stray += 1;
            return;
        };
        *n = n.saturating_add(1);
        match c.outcome {
            Outcome::Success(reply) if reply == payload => ok += 1,
            Outcome::Success(_) => mismatches += 1,
            Outcome::Timeout => timeouts += 1,
            Outcome::Dropped | Outcome::SendFailed => errors += 1,
        }
    };
    for i in 0..count {
        if client
            .send_request(server, &payload, Policy::LbRoute, timeout_ns, i)
            .is_err()
        {
            not_started += 1;
            continue;
        }
        // The request's own timer bounds this loop.
        while client.in_flight() > 0 {
            step(&mut client);
        }
        while let Some(c) = client.next_completion() {
            record(c);
        }
    }
    let end = ferrix::time::now_ns().saturating_add(DRAIN_NS);
    while ferrix::time::now_ns() < end {
        step(&mut client);
        while let Some(c) = client.next_completion() {
            record(c);
        }
    }
    let once = completions.iter().filter(|&&n| n == 1).count();
    let s = client.stats();
    println!(
        "synthetic: client: {ok} of {count} requests of {size} B to {server} succeeded; timeouts {timeouts} errors {errors} not started {not_started} mismatches {mismatches}; completed once {once}, stray {stray}; r2p2 rx {} tx {} duplicates {}",
        s.rx_packets, s.tx_packets, s.duplicates
    );
    let good = ok == count && once == completions.len() && stray == 0;
    ferrix::exit(if good { 0 } else { 1 })
}

/// One round: send what is queued, receive what arrived, run the timers.
fn step(client: &mut Client<GuestTransport, GuestClock>) {
    client.transport_mut().flush();
    let polled = ferrix::net::poll(|d, buf| {
        let len = d.len.min(buf.len());
        client.handle_datagram(d.src, buf.get(..len).unwrap_or_default());
        None
    });
    if let Err(e) = polled {
        println!("synthetic: client: {e}");
        ferrix::exit(1);
    }
    client.transport_mut().flush();
    client.poll_timers();
}
