//! The batched loops end to end on 127.0.0.1: a queued batch is taken by one `recvmmsg` and
//! every request in it answered; batch sizes 1 and 32, busy and blocking, give the same
//! results.

use ferrix_net::r2p2::{R2p2Stats, ServerConfig};
use r2p2_linux::client::{Load, run_with};
use r2p2_linux::server::{Mode, ServeReport, serve_with};
use r2p2_linux::{LoopOptions, Poll};
use std::net::{SocketAddr, SocketAddrV4, UdpSocket};
use std::time::Duration;

fn bind() -> (UdpSocket, SocketAddrV4) {
    let s = r2p2_linux::bind(SocketAddrV4::new([127, 0, 0, 1].into(), 0)).unwrap();
    let SocketAddr::V4(a) = s.local_addr().unwrap() else {
        unreachable!()
    };
    (s, a)
}

/// One-packet REQUEST (F|L), LB_ROUTE, `rid`, then `payload` (spec "Golden bytes").
fn request(rid: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0xcc, 8, 0x00, 0xc0];
    v.extend_from_slice(&rid.to_be_bytes());
    v.extend_from_slice(&1u16.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

#[test]
fn a_queued_batch_is_taken_in_one_call_and_every_request_answered() {
    for batch in [32, 1] {
        let (server, saddr) = bind();
        let (client, _) = bind();
        for rid in 0..32u16 {
            client
                .send_to(&request(rid, &[rid as u8; 10]), saddr)
                .unwrap();
        }
        // On loopback, once a datagram sent after them arrived, the 32 are queued.
        let (sync, sync_addr) = bind();
        client.send_to(b"sync", sync_addr).unwrap();
        sync.recv(&mut [0; 8]).unwrap();

        let opts = LoopOptions {
            batch,
            poll: Poll::Busy,
            ..LoopOptions::default()
        };
        let ServeReport { stats, io } = serve_with(
            &server,
            ServerConfig::default(),
            Mode::Echo,
            Some(32),
            &opts,
        )
        .unwrap();
        assert_eq!(
            (stats.completed, stats.tx_packets, stats.tx_errors),
            (32, 32, 0)
        );
        if batch == 32 {
            assert_eq!(
                (io.rx.calls_with_data, io.rx.largest_batch),
                (1, 32),
                "{io}"
            );
            // 32 replies fill a batch: one sendmmsg.
            assert_eq!(io.tx.calls, 1, "{io}");
        } else {
            assert_eq!(
                (io.rx.calls_with_data, io.rx.largest_batch),
                (32, 1),
                "{io}"
            );
            assert_eq!(io.tx.calls, 32, "{io}");
        }
        assert_eq!(io.tx.sent, 32);

        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 64];
        for rid in 0..32u16 {
            let n = client.recv(&mut buf).unwrap();
            // RESPONSE, FIXED_ROUTE, F|L, same rid, p_order 1, the payload back.
            let mut want = vec![0xcc, 8, 0x11, 0xc0];
            want.extend_from_slice(&rid.to_be_bytes());
            want.extend_from_slice(&[0, 1]);
            want.extend_from_slice(&[rid as u8; 10]);
            assert_eq!(&buf[..n], &want[..], "batch {batch}");
        }
    }
}

/// What a run of every load gave: per load (ok, timeouts, errors, mismatches, latencies),
/// the client's counters, the server's counters.
type Outcome = (Vec<(u64, u64, u64, u64, usize)>, Vec<R2p2Stats>, R2p2Stats);

fn run_all(opts: LoopOptions) -> Outcome {
    // Depths kept below what overflows the default receive buffer with whole messages.
    let loads = [(0, 8), (64, 8), (1464, 4), (1465, 4), (5000, 2), (30000, 1)];
    let count = 20u64;
    let (server, saddr) = bind();
    let total = count * loads.len() as u64;
    let h = std::thread::spawn(move || {
        serve_with(
            &server,
            ServerConfig::default(),
            Mode::Echo,
            Some(total),
            &opts,
        )
        .unwrap()
    });
    let (socket, _) = bind();
    let mut results = Vec::new();
    let mut stats = Vec::new();
    for (size, depth) in loads {
        let load = Load {
            server: saddr,
            count,
            size,
            service_ns: None,
            timeout_ns: 10_000_000_000,
            depth,
            verify_echo: true,
            sack: false,
            rto_ns: 1_000_000,
        };
        let r = run_with(&socket, &load, &opts).unwrap();
        results.push((r.ok, r.timeouts, r.errors, r.mismatches, r.latencies.len()));
        stats.push(r.stats);
    }
    let served = h.join().unwrap();
    (results, stats, served.stats)
}

#[test]
fn batch_sizes_1_and_32_busy_or_blocking_give_the_same_results() {
    let base = run_all(LoopOptions {
        batch: 1,
        poll: Poll::Busy,
        ..LoopOptions::default()
    });
    for (ok, timeouts, errors, mismatches, latencies) in &base.0 {
        assert_eq!(
            (*ok, *timeouts, *errors, *mismatches, *latencies),
            (20, 0, 0, 0, 20)
        );
    }
    for (batch, poll) in [(32, Poll::Busy), (32, Poll::Block), (1, Poll::Block)] {
        let got = run_all(LoopOptions {
            batch,
            poll,
            ..LoopOptions::default()
        });
        assert_eq!(got, base, "batch {batch} {poll:?}");
    }
}
