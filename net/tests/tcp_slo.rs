//! SLO-aware flow control between two TCP endpoints in memory (virtual time): a server that
//! advertises tokens, a client that spends them, both over smoltcp with the window rewritten
//! at the edge (`ferrix_net::tcp::slo`).
//!
//! The server's app serves 8-byte requests one at a time with a fixed 10 µs service time (a
//! virtual single-server queue) and answers each; the client tries to send requests on 4
//! connections faster than that. Checked: with flow control the client's sends are refused
//! at once (`NoTokens`/`Silent`), the server almost never sees a request without a token, the p99
//! wait stays within the 300 µs SLO, and every reply is right; without it (same offered load)
//! the wait runs away. A client that knows nothing of the window's meaning still gets
//! correct TCP from a controlled server.

use ferrix_net::tcp::slo::SloConfig;
use ferrix_net::tcp::{
    ConnId, Duration, Instant, MemQueue, TcpConfig, TcpEndpoint, TcpError, TcpEvent,
};
use ferrix_net::{IfConfig, MacAddr};
use std::collections::HashMap;
use std::net::Ipv4Addr;

const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const PORT: u16 = 7000;
const SERVICE_NS: u64 = 10_000;
const STEP_US: u64 = 2;

fn ifc(ip: Ipv4Addr, last: u8) -> IfConfig {
    IfConfig {
        mac: MacAddr([2, 0, 0, 0, 0, last]),
        ip,
        prefix_len: 24,
        gateway: None,
        mtu: 1500,
    }
}

struct Run {
    waits: Vec<u64>,
    refused: u64,
    sent: u64,
    replies: u64,
    over_budget: u64,
    throttled_periods: u64,
}

/// `server_slo`: the server controls; `client_slo`: the client reads the window;
/// `closed_loop`: each connection waits for its reply before the next request (else the
/// client offers 1.67x the server's capacity).
fn run(server_slo: bool, client_slo: bool, closed_loop: bool, steps: u64) -> Run {
    let t0 = Instant::from_millis(1);
    let slo = SloConfig {
        wslo_ns: 300_000,
        ..SloConfig::default()
    };
    let scfg = TcpConfig {
        port: PORT,
        slo: server_slo.then_some(slo),
        seed: 1,
        ..TcpConfig::default()
    };
    let ccfg = TcpConfig {
        slo_client: client_slo,
        seed: 2,
        ..TcpConfig::default()
    };
    let (mut sq, mut cq) = (MemQueue::default(), MemQueue::default());
    let mut server = TcpEndpoint::new(&ifc(SERVER, 1), scfg, &mut sq, t0);
    let mut client = TcpEndpoint::new(&ifc(CLIENT, 2), ccfg, &mut cq, t0);
    let conns: Vec<ConnId> = (0..4)
        .map(|_| client.connect(SERVER, PORT).unwrap())
        .collect();
    let mut up = 0;
    let (mut sev, mut cev) = (Vec::new(), Vec::new());
    let mut inbuf: HashMap<ConnId, Vec<u8>> = HashMap::new();
    // The server's single worker: when it is next free (ns), and the replies it will send.
    let mut free_at = 0u64;
    let mut pending: Vec<(u64, ConnId, [u8; 8])> = Vec::new();
    let mut r = Run {
        waits: Vec::new(),
        refused: 0,
        sent: 0,
        replies: 0,
        over_budget: 0,
        throttled_periods: 0,
    };
    let mut expect: HashMap<ConnId, Vec<[u8; 8]>> = HashMap::new();
    let mut got: HashMap<ConnId, Vec<u8>> = HashMap::new();
    let mut seq = 0u64;
    for step in 0..steps {
        let now = t0 + Duration::from_micros(step * STEP_US);
        let now_ns = (step * STEP_US + 1000) * 1000;
        sev.clear();
        server.poll(now, &mut sq, &mut sev);
        for &ev in &sev {
            if let TcpEvent::Received(c, _) = ev {
                let data = server.recv(c).unwrap().to_vec();
                server.recv_done(c, data.len()).unwrap();
                let b = inbuf.entry(c).or_default();
                b.extend_from_slice(&data);
                while b.len() >= 8 {
                    let req: [u8; 8] = b[..8].try_into().unwrap();
                    b.drain(..8);
                    server.slo_request(c);
                    let start = free_at.max(now_ns);
                    r.waits.push(start - now_ns);
                    free_at = start + SERVICE_NS;
                    server.slo_served(SERVICE_NS);
                    pending.push((free_at, c, req));
                }
            }
        }
        // Replies whose service is over.
        pending.retain(|&(done, c, req)| {
            if done <= now_ns {
                let mut rep = req;
                rep.iter_mut().for_each(|x| *x = !*x);
                let _ = server.send(c, &rep);
                false
            } else {
                true
            }
        });
        server.flush(now, &mut sq);
        cev.clear();
        client.poll(now, &mut cq, &mut cev);
        for &ev in &cev {
            match ev {
                TcpEvent::Connected(_) => up += 1,
                TcpEvent::Received(c, _) => {
                    let data = client.recv(c).unwrap().to_vec();
                    client.recv_done(c, data.len()).unwrap();
                    got.entry(c).or_default().extend_from_slice(&data);
                }
                _ => {}
            }
        }
        // Offered load: one request every 6 µs over the 4 connections (1.67× capacity).
        let c = conns[(step / 3 % 4) as usize];
        let outstanding =
            expect.get(&c).map_or(0, Vec::len) - got.get(&c).map_or(0, |g| g.len() / 8);
        if up == 4 && step % 3 == 0 && !(closed_loop && outstanding > 0) {
            seq += 1;
            let req = seq.to_be_bytes();
            match client.send_request(c, &req) {
                Ok(8) => {
                    r.sent += 1;
                    expect.entry(c).or_default().push(req);
                }
                Ok(_) => panic!("a partial send"),
                Err(TcpError::NoTokens | TcpError::Silent(_)) => r.refused += 1,
                Err(e) => panic!("{e:?}"),
            }
        }
        client.flush(now, &mut cq);
        while let Some(f) = sq.tx.pop_front() {
            cq.rx.push_back(f);
        }
        while let Some(f) = cq.tx.pop_front() {
            sq.rx.push_back(f);
        }
    }
    // Every reply that came is the complement of its request, in order.
    for (c, reqs) in &expect {
        let g = got.get(c).map_or(&[][..], Vec::as_slice);
        for (i, chunk) in g.chunks(8).enumerate() {
            let want: Vec<u8> = reqs[i].iter().map(|x| !x).collect();
            assert_eq!(chunk, &want[..], "reply {i} on {c:?}");
        }
        r.replies += (g.len() / 8) as u64;
    }
    let st = server.slo_stats();
    r.over_budget = st.over_budget;
    r.throttled_periods = st.throttled_periods;
    r.waits.sort_unstable();
    r
}

fn p99(w: &[u64]) -> u64 {
    w[w.len() * 99 / 100]
}

#[test]
fn tokens_keep_the_wait_within_the_slo_under_overload() {
    let steps = 100_000; // 200 ms of virtual time
    let free = run(false, false, false, steps);
    let ctl = run(true, true, false, steps);
    eprintln!(
        "uncontrolled: p99 wait {} ns, {} sent; controlled: p99 wait {} ns, {} sent, {} refused, {} throttled periods",
        p99(&free.waits),
        free.sent,
        p99(&ctl.waits),
        ctl.sent,
        ctl.refused,
        ctl.throttled_periods
    );
    assert_eq!(free.refused, 0);
    assert!(p99(&free.waits) > 3_000_000, "the uncontrolled queue grows");
    assert!(p99(&ctl.waits) <= 300_000, "p99 wait {}", p99(&ctl.waits));
    assert!(ctl.refused > 1000 && ctl.throttled_periods > 100);
    // A window counts the tokens left when the server sent it; requests the client sent in
    // the meantime are spent twice, so a few arrive without a token (2 in this run).
    assert!(
        ctl.over_budget * 1000 <= ctl.sent,
        "{} of {} requests came without a token",
        ctl.over_budget,
        ctl.sent
    );
    // The server stayed busy: at least 70 % of its capacity over the run.
    let capacity = steps * STEP_US * 1000 / SERVICE_NS;
    assert!(
        ctl.waits.len() as u64 > capacity * 7 / 10,
        "{} served",
        ctl.waits.len()
    );
    assert!(ctl.replies > 0 && ctl.replies <= ctl.sent);
}

#[test]
fn a_client_that_ignores_the_window_still_gets_correct_tcp() {
    let r = run(true, false, true, 20_000);
    assert_eq!(r.refused, 0);
    assert!(r.replies > 100, "{} replies", r.replies);
    assert!(
        r.sent - r.replies <= 4,
        "every request answered but the last in flight"
    );
}
