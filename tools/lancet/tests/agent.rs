//! Agent against the local synthetic server over the control protocol (loopback only, small
//! bounded loads).

use std::net::TcpListener;
use std::time::Duration;

use lancet::control::{AgentClient, Reply, Request};
use lancet::server::SyntheticServer;
use lancet::workload::{AppProto, Transport, Workload};

fn run(transport: Transport) {
    let server = SyntheticServer::start("127.0.0.1:0", transport, 0.0).unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let agent = std::thread::spawn(move || lancet::agent::serve(l, true));
    let mut c = AgentClient::connect(&addr, Duration::from_secs(10)).unwrap();
    let w = Workload {
        target: server.addr().to_string(),
        transport,
        proto: AppProto::Synthetic,
        service_us: 20.0,
        connections: 2,
        ..Workload::default()
    };
    let ack = |r: Reply| assert!(matches!(r, Reply::Ack), "{r:?}");
    ack(c
        .call(&Request::Configure {
            workload: w,
            percentiles: vec![50.0, 99.0],
            confidence: 0.95,
            max_lag: 10,
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
    assert!((20.0..1_000_000.0).contains(&p50), "p50 {p50}");
    ack(c.call(&Request::Exit).unwrap());
    agent.join().unwrap().unwrap();
}

#[test]
fn agent_tcp_and_udp() {
    run(Transport::Tcp);
    run(Transport::Udp);
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
        workload: w,
        percentiles: vec![99.0],
        confidence: 0.95,
        max_lag: 5,
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
