//! An agent in kernel-timestamp mode (`SO_TIMESTAMPING`) against a loopback echo server over UDP
//! and TCP: every sampled latency is positive, and the report says which stamps timed them.
//! The TCP echo server answers in 37-byte pieces, so 64-byte responses straddle receives and
//! one receive often completes several: the byte-offset attribution is exercised for real.
//!
//! Loads are small and bounded; nothing here asserts a speed or a latency bound.

use std::io::{self, Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use lancet::agent::options::{AgentKind, AgentOptions, StampKind, TsMode};
use lancet::control::{AgentClient, LatencyReport, Reply, Request};
use lancet::workload::{AppProto, Transport, Workload};

static SERIAL: Mutex<()> = Mutex::new(());

/// An echo server on loopback; stops when dropped.
struct Echo {
    addr: String,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn tcp_echo_conn(mut s: std::net::TcpStream, stop: &AtomicBool) -> io::Result<()> {
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_millis(20)))?;
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                for piece in buf[..n].chunks(37) {
                    s.write_all(piece)?;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn echo(transport: Transport) -> Echo {
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let (addr, t) = match transport {
        Transport::Tcp => {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.set_nonblocking(true).unwrap();
            let addr = l.local_addr().unwrap().to_string();
            let t = std::thread::spawn(move || {
                let mut conns = Vec::new();
                while !st.load(Ordering::Relaxed) {
                    match l.accept() {
                        Ok((s, _)) => {
                            s.set_nonblocking(false).unwrap();
                            let st = st.clone();
                            conns.push(std::thread::spawn(move || {
                                let _ = tcp_echo_conn(s, &st);
                            }));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
                for c in conns {
                    let _ = c.join();
                }
            });
            (addr, t)
        }
        Transport::Udp => {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            let addr = s.local_addr().unwrap().to_string();
            let t = std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !st.load(Ordering::Relaxed) {
                    if let Ok((n, from)) = s.recv_from(&mut buf) {
                        let _ = s.send_to(&buf[..n], from);
                    }
                }
            });
            (addr, t)
        }
        Transport::R2p2 => unreachable!(),
    };
    Echo {
        addr,
        stop,
        threads: vec![t],
    }
}

/// Run one in-process agent with `opts` at `rps` and return its latency report once it holds
/// `samples` (or after a bounded number of polls).
fn measure(
    target: &str,
    transport: Transport,
    opts: AgentOptions,
    samples: usize,
) -> LatencyReport {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let agent = std::thread::spawn(move || lancet::agent::serve(l, true));
    let mut c = AgentClient::connect(&addr, Duration::from_secs(10)).unwrap();
    let w = Workload {
        target: target.into(),
        transport,
        proto: AppProto::Echo,
        echo_size: 64,
        connections: 2,
        outstanding: 8,
        ..Workload::default()
    };
    let ack = |r: Reply| assert!(matches!(r, Reply::Ack), "{r:?}");
    ack(c
        .call(&Request::Configure {
            workload: Box::new(w),
            percentiles: vec![50.0, 99.0],
            confidence: 0.95,
            max_lag: 10,
            agent: opts,
        })
        .unwrap());
    ack(c
        .call(&Request::StartLoad {
            rps: 3000.0,
            max_secs: 20.0,
        })
        .unwrap());
    std::thread::sleep(Duration::from_millis(200));
    ack(c
        .call(&Request::StartMeasure {
            samples,
            sampling: 1,
        })
        .unwrap());
    let mut report = None;
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(100));
        let Reply::Latency(r) = c.call(&Request::GetLatency).unwrap() else {
            panic!("not a latency reply")
        };
        let full = r.count >= samples;
        report = Some(r);
        if full {
            break;
        }
    }
    ack(c.call(&Request::Exit).unwrap());
    agent.join().unwrap().unwrap();
    report.unwrap()
}

fn kernel_mode(transport: Transport) {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = echo(transport);
    let opts = AgentOptions {
        kind: AgentKind::Symmetric,
        timestamps: TsMode::Kernel,
        ..AgentOptions::default()
    };
    let r = measure(&server.addr, transport, opts, 600);
    let p50 = r.percentiles.first().map_or(f64::NAN, |p| p.estimate);
    eprintln!(
        "{transport}: {} samples, p50 {p50:.1} µs; {}",
        r.count, r.timestamps
    );
    assert!(r.count >= 50, "{transport}: {} samples", r.count);
    assert_eq!(r.samples.len(), r.count);
    for (t, lat) in &r.samples {
        assert!(*lat > 0.0, "{transport}: latency {lat} µs at {t} s");
    }
    // The report says what was asked and what was used, and the counts add up.
    assert_eq!(r.stamps.requested, TsMode::Kernel);
    let s = &r.stamps;
    assert_eq!(
        (s.hardware + s.kernel_software + s.software) as usize,
        r.count,
        "{s:?}"
    );
    assert!(!r.timestamps_used.is_empty());
    let json = serde_json::to_value(&r).unwrap();
    assert!(json["timestamps"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(json["timestamps_used"].is_array(), "{json}");
    if r.stamps.fallbacks.iter().any(|f| f.contains("setsockopt")) {
        // A kernel without SO_TIMESTAMPING: the agent fell back and said so.
        eprintln!(
            "note: {transport}: SO_TIMESTAMPING refused: {:?}",
            s.fallbacks
        );
        assert!(
            r.timestamps.contains("software fallback"),
            "{}",
            r.timestamps
        );
        return;
    }
    // Loopback has no NIC clock: kernel software stamps, for (almost) every sample. A sample
    // whose TX stamp was late falls back to user space and is counted as such.
    assert_eq!(r.timestamps_used[0], StampKind::KernelSoftware, "{s:?}");
    assert!(s.kernel_software as usize * 2 >= r.count, "{s:?}");
    assert_eq!(s.hardware, 0);
    assert_eq!(s.rejected, 0, "mismatched stamps: {s:?}");
    assert!(r.timestamps.contains("kernel-software"), "{}", r.timestamps);
}

#[test]
fn kernel_timestamps_udp() {
    kernel_mode(Transport::Udp);
}

#[test]
fn kernel_timestamps_tcp() {
    kernel_mode(Transport::Tcp);
}

#[test]
fn software_timestamps_are_the_default_and_say_so() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = echo(Transport::Tcp);
    let r = measure(&server.addr, Transport::Tcp, AgentOptions::default(), 200);
    let p50 = r.percentiles.first().map_or(f64::NAN, |p| p.estimate);
    eprintln!("tcp software: {} samples, p50 {p50:.1} µs", r.count);
    assert!(r.count > 0);
    assert_eq!(r.stamps.requested, TsMode::Software);
    assert_eq!(r.timestamps_used, vec![StampKind::Software]);
    assert_eq!(r.stamps.software as usize, r.count);
    assert!(r.timestamps.starts_with("software"), "{}", r.timestamps);
}

#[test]
fn kernel_mode_on_r2p2_falls_back_and_says_so() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let sock = r2p2_linux::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = sock.local_addr().unwrap().to_string();
    let cfg = ferrix_net::r2p2::ServerConfig {
        gc_rtos: 200,
        ..Default::default()
    };
    // Lives as long as the test process (it blocks at most 1 ms per receive).
    std::thread::spawn(move || {
        r2p2_linux::server::serve(&sock, cfg, r2p2_linux::server::Mode::Echo, None)
    });
    let opts = AgentOptions {
        timestamps: TsMode::Kernel,
        ..AgentOptions::default()
    };
    let r = measure(&addr, Transport::R2p2, opts, 100);
    assert!(r.count > 0);
    assert_eq!(r.timestamps_used, vec![StampKind::Software]);
    assert!(
        r.stamps.fallbacks.iter().any(|f| f.contains("R2P2")),
        "{:?}",
        r.stamps
    );
    assert!(
        r.timestamps.contains("software fallback"),
        "{}",
        r.timestamps
    );
}
