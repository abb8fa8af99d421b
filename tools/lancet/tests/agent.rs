//! Agent against the local synthetic server over the control protocol (loopback only, small
//! bounded loads).

use std::net::TcpListener;
use std::time::Duration;

use lancet::control::{AgentClient, Reply, Request};
use lancet::server::SyntheticServer;
use lancet::workload::{AppProto, Transport, Workload};

fn run(transport: Transport) {
    let server = SyntheticServer::start("127.0.0.1:0", transport, 0.0).unwrap();
    drive(server.addr().to_string(), transport, AppProto::Synthetic);
}

/// An R2P2 server from `r2p2-linux` on a loopback port, in a thread that lives as long as the
/// test process (it blocks at most 1 ms per receive).
fn r2p2_server(mode: r2p2_linux::server::Mode) -> String {
    let s = r2p2_linux::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = s.local_addr().unwrap().to_string();
    let cfg = ferrix_net::r2p2::ServerConfig {
        gc_rtos: 200,
        ..Default::default()
    };
    std::thread::spawn(move || r2p2_linux::server::serve(&s, cfg, mode, None));
    addr
}

fn drive(target: String, transport: Transport, proto: AppProto) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let agent = std::thread::spawn(move || lancet::agent::serve(l, true));
    let mut c = AgentClient::connect(&addr, Duration::from_secs(10)).unwrap();
    let w = Workload {
        target,
        transport,
        proto,
        service_us: 20.0,
        echo_size: 64,
        connections: 2,
        ..Workload::default()
    };
    let ack = |r: Reply| assert!(matches!(r, Reply::Ack), "{r:?}");
    ack(c
        .call(&Request::Configure {
            workload: Box::new(w),
            percentiles: vec![50.0, 99.0],
            confidence: 0.95,
            max_lag: 10,
            agent: Default::default(),
        })
        .unwrap());
    ack(c
        .call(&Request::StartLoad {
            rps: 2000.0,
            max_secs: 10.0,
        })
        .unwrap());
    std::thread::sleep(Duration::from_millis(300));
    ack(c
        .call(&Request::StartMeasure {
            samples: 400,
            sampling: 2,
        })
        .unwrap());
    std::thread::sleep(Duration::from_millis(600));
    let Reply::Throughput(t) = c.call(&Request::GetThroughput).unwrap() else {
        panic!()
    };
    // Sent + arrivals skipped while descheduled (a busy shared machine) make up the schedule.
    let scheduled = t.sent_rps + t.late as f64 / t.window_secs;
    assert!((scheduled - 2000.0).abs() < 600.0, "{t:?}");
    assert!(t.received_rps > 0.5 * t.sent_rps, "{t:?}");
    if transport == Transport::R2p2 {
        // Replies are matched by request id; at 2,000 rps on loopback nearly all arrive.
        assert!(t.received_rps > 0.8 * t.sent_rps, "{t:?}");
    }
    let ia = t.inter_arrival.clone().unwrap();
    // Only a quiet machine can promise a passing inter-arrival test.
    if t.late == 0 {
        assert!(ia.p_value > 1e-4, "{t:?}");
    }
    let mut l = None;
    for _ in 0..50 {
        let Reply::Latency(r) = c.call(&Request::GetLatency).unwrap() else {
            panic!()
        };
        let full = r.count >= 400;
        l = Some(r);
        if full {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let l = l.unwrap();
    assert!(l.count >= 100, "{}", l.count);
    let p50 = l.percentiles[0].estimate;
    // At least the 20 µs service time; the upper bound only catches nonsense (a loaded
    // 2-core machine can deschedule the server for many milliseconds).
    let floor = if proto == AppProto::Synthetic {
        20.0
    } else {
        0.0
    };
    assert!(
        p50 > floor && p50 < 1_000_000.0,
        "p50 {p50} ({transport}, {proto:?})"
    );
    ack(c.call(&Request::Exit).unwrap());
    agent.join().unwrap().unwrap();
}

#[test]
fn agent_tcp_and_udp() {
    run(Transport::Tcp);
    run(Transport::Udp);
}

#[test]
fn agent_r2p2_synthetic_and_echo() {
    use r2p2_linux::server::Mode;
    let synthetic = r2p2_server(Mode::Synthetic { reply_size: 8 });
    drive(synthetic, Transport::R2p2, AppProto::Synthetic);
    let echo = r2p2_server(Mode::Echo);
    drive(echo, Transport::R2p2, AppProto::Echo);
}

#[test]
fn agent_reports_unreachable_target() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let agent = std::thread::spawn(move || lancet::agent::serve(l, true));
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut c = AgentClient::connect(&addr, Duration::from_secs(10)).unwrap();
    let w = Workload {
        target: dead.to_string(),
        ..Workload::default()
    };
    c.call(&Request::Configure {
        workload: Box::new(w),
        percentiles: vec![99.0],
        confidence: 0.95,
        max_lag: 5,
        agent: Default::default(),
    })
    .unwrap();
    c.call(&Request::StartLoad {
        rps: 100.0,
        max_secs: 2.0,
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let e = c.call(&Request::GetThroughput).unwrap_err();
    assert!(e.to_string().contains("cannot connect"), "{e}");
    c.call(&Request::Exit).unwrap();
    agent.join().unwrap().unwrap();
}
