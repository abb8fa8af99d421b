//! GET and SET through the memcached ASCII and RESP codecs (parse + store + reply), next to a
//! plain `HashMap` get/insert in the same run; the printed ratios (codec time / HashMap time)
//! are the numbers to compare on these noisy machines.
//! Run: `cargo bench -p ferrix-kv --bench codecs`.

use criterion::{Criterion, Throughput};
use ferrix_kv::memcache::Memcache;
use ferrix_kv::resp::Resp;
use ferrix_kv::{Clock, Codec, Limits, Store, StoreConfig};
use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

const KEYS: usize = 1000;

/// One request fed to a codec.
type Feed<'a> = dyn FnMut(&[u8], &mut Vec<u8>, &mut Store) + 'a;

fn key(i: usize) -> String {
    format!("key:{i:08}")
}

/// Mean ns per operation of `f` over `n` operations (for the ratio line).
fn ns_per_op(n: u32, mut f: impl FnMut(usize)) -> f64 {
    let t = Instant::now();
    for i in 0..n as usize {
        f(i);
    }
    t.elapsed().as_nanos() as f64 / f64::from(n)
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));
    let now = Clock::new(1, 1_700_000_000);
    let value = vec![b'v'; 64];
    let mut store = Store::new(StoreConfig::default());
    let mut map: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    let mc_set: Vec<Vec<u8>> = (0..KEYS)
        .map(|i| {
            let mut v = format!("set {} 0 0 64\r\n", key(i)).into_bytes();
            v.extend_from_slice(&value);
            v.extend_from_slice(b"\r\n");
            v
        })
        .collect();
    let mc_get: Vec<Vec<u8>> = (0..KEYS)
        .map(|i| format!("get {}\r\n", key(i)).into_bytes())
        .collect();
    let resp_set: Vec<Vec<u8>> = (0..KEYS)
        .map(|i| {
            let k = key(i);
            let mut v = format!("*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n$64\r\n", k.len()).into_bytes();
            v.extend_from_slice(&value);
            v.extend_from_slice(b"\r\n");
            v
        })
        .collect();
    let resp_get: Vec<Vec<u8>> = (0..KEYS)
        .map(|i| {
            let k = key(i);
            format!("*2\r\n$3\r\nGET\r\n${}\r\n{k}\r\n", k.len()).into_bytes()
        })
        .collect();
    let mut mc = Memcache::new(Limits::default());
    let mut resp = Resp::new(Limits::default());
    let mut out = Vec::with_capacity(4096);

    let run =
        |codec: &mut Feed<'_>, reqs: &[Vec<u8>], i: usize, out: &mut Vec<u8>, st: &mut Store| {
            out.clear();
            codec(&reqs[i % KEYS], out, st);
            black_box(out.len());
        };
    let mut mc_feed = |r: &[u8], o: &mut Vec<u8>, s: &mut Store| {
        mc.feed(r, o, s, now);
    };
    let mut resp_feed = |r: &[u8], o: &mut Vec<u8>, s: &mut Store| {
        resp.feed(r, o, s, now);
    };

    let mut g = c.benchmark_group("kv");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("hashmap/insert", |b| {
        b.iter(|| {
            i += 1;
            map.insert(key(i % KEYS).into_bytes(), value.clone());
        })
    });
    g.bench_function("hashmap/get", |b| {
        b.iter(|| {
            i += 1;
            black_box(map.get(key(i % KEYS).as_bytes()).map(|v| v.len()));
        })
    });
    g.bench_function("ascii/set", |b| {
        b.iter(|| {
            i += 1;
            run(&mut mc_feed, &mc_set, i, &mut out, &mut store)
        })
    });
    g.bench_function("ascii/get", |b| {
        b.iter(|| {
            i += 1;
            run(&mut mc_feed, &mc_get, i, &mut out, &mut store)
        })
    });
    g.bench_function("resp/set", |b| {
        b.iter(|| {
            i += 1;
            run(&mut resp_feed, &resp_set, i, &mut out, &mut store)
        })
    });
    g.bench_function("resp/get", |b| {
        b.iter(|| {
            i += 1;
            run(&mut resp_feed, &resp_get, i, &mut out, &mut store)
        })
    });
    g.finish();

    // The ratio line: the same operations timed back to back (the HashMap side also formats
    // the key, as the codec side parses one).
    let n = 200_000;
    let h_ins = ns_per_op(n, |i| {
        map.insert(key(i % KEYS).into_bytes(), value.clone());
    });
    let h_get = ns_per_op(n, |i| {
        black_box(map.get(key(i % KEYS).as_bytes()).map(|v| v.len()));
    });
    let a_set = ns_per_op(n, |i| run(&mut mc_feed, &mc_set, i, &mut out, &mut store));
    let a_get = ns_per_op(n, |i| run(&mut mc_feed, &mc_get, i, &mut out, &mut store));
    let r_set = ns_per_op(n, |i| {
        run(&mut resp_feed, &resp_set, i, &mut out, &mut store)
    });
    let r_get = ns_per_op(n, |i| {
        run(&mut resp_feed, &resp_get, i, &mut out, &mut store)
    });
    println!(
        "ratios vs HashMap (same run): ascii set {:.2}x, ascii get {:.2}x, resp set {:.2}x, resp get {:.2}x",
        a_set / h_ins,
        a_get / h_get,
        r_set / h_ins,
        r_get / h_get
    );
    println!(
        "ops/s: hashmap insert {:.0}, get {:.0}; ascii set {:.0}, get {:.0}; resp set {:.0}, get {:.0}",
        1e9 / h_ins,
        1e9 / h_get,
        1e9 / a_set,
        1e9 / a_get,
        1e9 / r_set,
        1e9 / r_get
    );
    c.final_summary();
}
