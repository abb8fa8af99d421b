//! The cost of idle connections on a busy one: a request/reply round trip on one connection
//! of a server endpoint that also holds 2,000 idle open connections, with those parked
//! (`TcpConfig::park_after_ms`, the default) and with parking off, next to the same round
//! trip with no idle connections at all, in the same run. smoltcp visits every socket of its
//! set on each poll, so without parking the round trip grows with the idle connections; with
//! parking it should cost about what it costs alone. Compare the ratios, not the times.
//! Run: `cargo bench -p ferrix-net --bench tcp_idle`.

#[path = "../tests/tcp_common/mod.rs"]
mod tcp_common;

use criterion::{Criterion, criterion_group, criterion_main};
use ferrix_net::tcp::{ConnId, Duration};
use tcp_common::{Net, PORT, SERVER_IP};

const IDLE: usize = 2_000;

/// A server/client pair with `idle` idle connections plus one busy one, after 200 ms of
/// quiet (the idle ones are parked if parking is on); returns the busy connection.
fn setup(idle: usize, park_after_ms: u32) -> (Net, ConnId) {
    let mut net = Net::with_park_after(idle + 8, 8, 1024, park_after_ms);
    let ids: Vec<ConnId> = (0..=idle)
        .map(|_| net.client.ep.connect(SERVER_IP, PORT).unwrap())
        .collect();
    net.run_until(1_000_000, |net| net.client.connected == idle + 1);
    let until = net.now + Duration::from_millis(200);
    while net.now < until {
        net.step();
    }
    (net, ids[0])
}

/// One request on `id` and the steps until its reply is in.
fn round_trip(net: &mut Net, id: ConnId, seq: &mut u64) {
    *seq += 1;
    net.client.send_msg(id, *seq);
    let want = net.client.conns[&id].got.len() + 1;
    net.run_until(10_000, |net| net.client.conns[&id].got.len() == want);
}

fn bench(c: &mut Criterion) {
    for (name, idle, park) in [
        ("tcp/round_trip_alone", 0, 50),
        ("tcp/round_trip_2000_idle_parked", IDLE, 50),
        ("tcp/round_trip_2000_idle_unparked", IDLE, 0),
    ] {
        let (mut net, id) = setup(idle, park);
        let mut seq = 0;
        c.bench_function(name, |b| b.iter(|| round_trip(&mut net, id, &mut seq)));
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
