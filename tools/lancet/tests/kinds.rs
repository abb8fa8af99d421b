//! Agent kinds (thesis fig 4.2) against the local synthetic server: a throughput agent loads but
//! returns no samples, a latency agent alone yields samples (one connection, busy-polled), and
//! the coordinator sums throughput over all agents while taking latency from the
//! latency-capable ones only. Loopback only, small bounded loads, one test at a time.

use std::net::TcpListener;
use std::sync::Mutex;
use std::time::Duration;

use lancet::agent::options::{AgentKind, AgentOptions, TsMode};
use lancet::control::{AgentClient, LatencyReport, Reply, Request, ThroughputReport};
use lancet::coordinator::{self, Settings};
use lancet::server::SyntheticServer;
use lancet::workload::{AppProto, Transport, Workload};

static SERIAL: Mutex<()> = Mutex::new(());

fn agent(kind: AgentKind) -> AgentClient {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || lancet::agent::serve(l, true));
    AgentClient::connect(&addr, Duration::from_secs(10))
        .unwrap()
        .with_kind(kind)
}

fn workload(server: &SyntheticServer) -> Workload {
    Workload {
        target: server.addr().to_string(),
        transport: Transport::Tcp,
        proto: AppProto::Synthetic,
        service_us: 10.0,
        connections: 2,
        ..Workload::default()
    }
}

/// Drive one agent of `kind` directly over the control protocol at `rps`.
fn drive(kind: AgentKind, rps: f64) -> (ThroughputReport, LatencyReport) {
    let server = SyntheticServer::start("127.0.0.1:0", Transport::Tcp, 0.0).unwrap();
    let mut c = agent(kind);
    let ack = |r: Reply| assert!(matches!(r, Reply::Ack), "{r:?}");
    ack(c
        .call(&Request::Configure {
            workload: Box::new(workload(&server)),
            percentiles: vec![50.0, 99.0],
            confidence: 0.95,
            max_lag: 10,
            agent: AgentOptions {
                kind,
                ..AgentOptions::default()
            },
        })
        .unwrap());
    ack(c
        .call(&Request::StartLoad {
            rps,
            max_secs: 10.0,
        })
        .unwrap());
    std::thread::sleep(Duration::from_millis(200));
    ack(c
        .call(&Request::StartMeasure {
            samples: 200,
            sampling: 1,
        })
        .unwrap());
    let mut lat = None;
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(100));
        let Reply::Latency(l) = c.call(&Request::GetLatency).unwrap() else {
            panic!("not a latency reply")
        };
        let full = l.count >= 200;
        lat = Some(l);
        if full {
            break;
        }
    }
    let Reply::Throughput(t) = c.call(&Request::GetThroughput).unwrap() else {
        panic!("not a throughput reply")
    };
    ack(c.call(&Request::Exit).unwrap());
    (t, lat.unwrap())
}

#[test]
fn throughput_agent_loads_without_samples() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (t, l) = drive(AgentKind::Throughput, 2000.0);
    assert_eq!(t.kind, AgentKind::Throughput);
    assert!(t.sent_rps > 0.0 && t.received_rps > 0.0, "{t:?}");
    assert_eq!(l.kind, AgentKind::Throughput);
    assert_eq!(l.count, 0);
    assert!(l.samples.is_empty() && l.percentiles.is_empty());
    assert!(l.busy_poll.is_none());
}

#[test]
fn latency_agent_alone_yields_samples() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (t, l) = drive(AgentKind::Latency, 500.0);
    assert_eq!(l.kind, AgentKind::Latency);
    assert!(l.count > 0, "{l:?}");
    // The 10 µs service time is a floor (software stamps include it).
    assert!(l.samples.iter().all(|(_, v)| *v >= 10.0), "{:?}", l.samples);
    assert!(t.sent_rps > 0.0, "{t:?}");
    // SO_BUSY_POLL was tried and the report says how it went.
    let b = l.busy_poll.expect("latency agents report SO_BUSY_POLL");
    assert_eq!(b.requested_us, 50);
    assert!(b.detail.contains("SO_BUSY_POLL"), "{}", b.detail);
    eprintln!("busy poll: {}", b.detail);
}

fn settings() -> Settings {
    Settings {
        percentiles: vec![50.0, 99.0],
        samples: 200,
        sampling: 1,
        more_samples: 200,
        max_retries: 1,
        max_lag: 10,
        warmup: Duration::from_millis(200),
        max_time: Duration::from_secs(8),
        // Loose gates: what the machine misses is not what this test is about.
        load_tolerance: 0.9,
        ad_alpha: 1e-12,
        ci_width_us: 1e9,
        latency_agent_rps: 400.0,
        ..Settings::default()
    }
}

#[test]
fn coordinator_combines_throughput_and_latency_agents() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = SyntheticServer::start("127.0.0.1:0", Transport::Tcp, 0.0).unwrap();
    let mut agents = vec![agent(AgentKind::Throughput), agent(AgentKind::Latency)];
    let s = Settings {
        timestamps: TsMode::Kernel,
        ..settings()
    };
    let r = coordinator::measure_load(&mut agents, &workload(&server), 2400.0, &s, &|m| {
        eprintln!("{m}")
    })
    .unwrap();
    coordinator::finish(&mut agents).unwrap();
    eprintln!(
        "{}",
        lancet::report::table(&coordinator::Experiment {
            points: vec![r.clone()],
            max_load_at_slo: None,
        })
    );
    // The load split: the latency agent its fixed rate, the throughput agent the rest.
    let kinds: Vec<_> = r.agents.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, vec![AgentKind::Throughput, AgentKind::Latency]);
    assert_eq!(r.agents[0].target_rps, 2000.0);
    assert_eq!(r.agents[1].target_rps, 400.0);
    // Throughput is the sum over all agents.
    let sum: f64 = r.agents.iter().map(|a| a.sent_rps).sum();
    assert!((r.achieved_rps - sum).abs() < 1e-6, "{r:?}");
    assert!(r.agents.iter().all(|a| a.sent_rps > 0.0), "{:?}", r.agents);
    // The latency checks ran unless this busy machine failed the load gate every round.
    if r.checks.iter().any(|c| c.name == "iid") {
        // Latency only from the latency agent (index 1).
        assert_eq!(r.agents[0].samples, 0);
        assert!(r.agents[1].samples > 0, "{:?}", r.agents);
        assert!(!r.raw.is_empty() && r.raw.iter().all(|(i, _, _)| *i == 1));
        assert!(!r.percentiles.is_empty());
        assert!(r.timestamps_used.len() == 1 || !r.stamps.fallbacks.is_empty());
        assert!(r.agents[1].busy_poll.is_some());
        assert!(r.agents[0].busy_poll.is_none());
        assert!(!r.timestamps.is_empty());
    } else {
        eprintln!("note: latency checks never reached: {:?}", r.reasons);
    }
    // The latency agent's inter-arrivals are reported but do not gate.
    let ia: Vec<_> = r
        .checks
        .iter()
        .filter(|c| c.name == "inter-arrival")
        .collect();
    assert_eq!(ia.len(), 2);
    assert!(
        ia[1].passed && ia[1].detail.contains("not gating"),
        "{ia:?}"
    );
}

#[test]
fn throughput_agents_alone_cannot_measure_latency() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = SyntheticServer::start("127.0.0.1:0", Transport::Tcp, 0.0).unwrap();
    let mut agents = vec![agent(AgentKind::Throughput)];
    let r = coordinator::measure_load(&mut agents, &workload(&server), 500.0, &settings(), &|_| {})
        .unwrap();
    coordinator::finish(&mut agents).unwrap();
    assert!(!r.conclusive);
    assert!(r.reasons[0].contains("no latency-capable agent"), "{r:?}");
}
