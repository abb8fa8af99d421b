//! The store: memory bound and CLOCK eviction, CAS, expiry with a simulated clock
//! (memcached's relative/absolute rule, Redis TTLs), flush_all with a delay, sharding.

mod common;

use ferrix_kv::memcache::Memcache;
use ferrix_kv::ops::{Mode, Outcome};
use ferrix_kv::resp::Resp;
use ferrix_kv::store::{ITEM_OVERHEAD, item_cost};
use ferrix_kv::{Backend, Clock, Deadline, Limits, Sharded, Store, StoreConfig};

const S: u64 = 1_000_000_000;

fn mc(b: &mut impl Backend, cmd: &str, now: Clock) -> String {
    let mut c = Memcache::new(Limits::default());
    String::from_utf8(common::drive(&mut c, b, cmd.as_bytes(), &[cmd.len()], now).0).unwrap()
}

fn redis(b: &mut impl Backend, cmd: &str, now: Clock) -> String {
    let mut c = Resp::new(Limits::default());
    String::from_utf8(common::drive(&mut c, b, cmd.as_bytes(), &[cmd.len()], now).0).unwrap()
}

#[test]
fn memory_stays_within_limit_and_clock_evicts_unreferenced() {
    let limit = 100 * item_cost(4, 100);
    let mut s = Store::new(StoreConfig {
        mem_limit: limit,
        ..StoreConfig::default()
    });
    let now = common::clock();
    for i in 0..1000u32 {
        let key = format!("{i:04}");
        assert!(matches!(
            s.store(
                Mode::Set,
                key.as_bytes(),
                &[7; 100],
                0,
                Deadline::Never,
                now
            ),
            Outcome::Stored(_)
        ));
        assert!(s.used_bytes() <= limit);
        // Keep key 0000 hot: CLOCK gives it a second chance every sweep.
        s.get(b"0000", now);
    }
    assert_eq!(s.len(), 100);
    assert!(s.get(b"0000", now).is_some(), "hot key survived");
    assert!(s.get(b"0999", now).is_some(), "newest key present");
    assert_eq!(s.stats().evictions, 900);
    assert_eq!(item_cost(4, 100), 104 + ITEM_OVERHEAD);
}

#[test]
fn too_large_items_are_refused() {
    let mut s = Store::new(StoreConfig {
        item_size_max: 1000,
        ..StoreConfig::default()
    });
    let now = common::clock();
    assert_eq!(
        s.store(Mode::Set, b"k", &[0; 2000], 0, Deadline::Never, now),
        Outcome::TooLarge
    );
    assert!(s.is_empty());
}

#[test]
fn cas_changes_on_every_write() {
    let mut s = Store::new(StoreConfig::default());
    let now = common::clock();
    let Outcome::Stored(c1) = s.store(Mode::Set, b"k", b"1", 0, Deadline::Never, now) else {
        panic!()
    };
    assert_eq!(
        s.store(Mode::Cas(c1 + 100), b"k", b"2", 0, Deadline::Never, now),
        Outcome::Exists
    );
    let Outcome::Stored(c2) = s.store(Mode::Cas(c1), b"k", b"2", 0, Deadline::Never, now) else {
        panic!()
    };
    assert_ne!(c1, c2);
    let (_, c3) = s.incr_decr(b"k", 1, true, 0, now).unwrap();
    assert_ne!(c3, c2);
    assert_eq!(
        s.store(Mode::Cas(1), b"zz", b"2", 0, Deadline::Never, now),
        Outcome::NotFound
    );
}

#[test]
fn memcached_expiry_rules_with_a_simulated_clock() {
    let mut s = Store::new(StoreConfig::default());
    let t0 = common::clock();
    assert_eq!(mc(&mut s, "set rel 0 10 1\r\nx\r\n", t0), "STORED\r\n");
    let abs = t0.unix_now() + 20;
    assert_eq!(
        mc(&mut s, &format!("set abs 0 {abs} 1\r\ny\r\n"), t0),
        "STORED\r\n"
    );
    assert_eq!(mc(&mut s, "set neg 0 -1 1\r\nz\r\n", t0), "STORED\r\n");
    assert_eq!(mc(&mut s, "get neg\r\n", t0), "END\r\n");
    assert_eq!(
        mc(&mut s, "get rel abs\r\n", t0.advanced(9 * S)),
        "VALUE rel 0 1\r\nx\r\nVALUE abs 0 1\r\ny\r\nEND\r\n"
    );
    assert_eq!(
        mc(&mut s, "get rel abs\r\n", t0.advanced(10 * S)),
        "VALUE abs 0 1\r\ny\r\nEND\r\n"
    );
    assert_eq!(mc(&mut s, "get abs\r\n", t0.advanced(20 * S)), "END\r\n");
    // touch extends; gat too.
    assert_eq!(mc(&mut s, "set t 0 5 1\r\nx\r\n", t0), "STORED\r\n");
    assert_eq!(mc(&mut s, "touch t 100\r\n", t0), "TOUCHED\r\n");
    assert_eq!(
        mc(&mut s, "get t\r\n", t0.advanced(50 * S)),
        "VALUE t 0 1\r\nx\r\nEND\r\n"
    );
    assert_eq!(mc(&mut s, "touch nope 100\r\n", t0), "NOT_FOUND\r\n");
}

#[test]
fn flush_all_with_delay() {
    let mut s = Store::new(StoreConfig::default());
    let t0 = common::clock();
    mc(&mut s, "set a 0 0 1\r\nx\r\n", t0);
    assert_eq!(mc(&mut s, "flush_all 10\r\n", t0), "OK\r\n");
    assert_eq!(
        mc(&mut s, "get a\r\n", t0.advanced(9 * S)),
        "VALUE a 0 1\r\nx\r\nEND\r\n"
    );
    assert_eq!(mc(&mut s, "get a\r\n", t0.advanced(10 * S)), "END\r\n");
    // Stored after the flush time: kept.
    mc(&mut s, "set b 0 0 1\r\nx\r\n", t0.advanced(11 * S));
    assert_eq!(
        mc(&mut s, "get b\r\n", t0.advanced(12 * S)),
        "VALUE b 0 1\r\nx\r\nEND\r\n"
    );
}

#[test]
fn redis_ttl_rules_with_a_simulated_clock() {
    let mut s = Store::new(StoreConfig::default());
    let t0 = common::clock();
    assert_eq!(redis(&mut s, "SET a 1 EX 10\r\n", t0), "+OK\r\n");
    assert_eq!(redis(&mut s, "TTL a\r\n", t0), ":10\r\n");
    assert_eq!(redis(&mut s, "PTTL a\r\n", t0.advanced(S / 2)), ":9500\r\n");
    assert_eq!(redis(&mut s, "TTL a\r\n", t0.advanced(S * 3 / 2)), ":9\r\n");
    assert_eq!(redis(&mut s, "TTL nope\r\n", t0), ":-2\r\n");
    assert_eq!(redis(&mut s, "SET b 1\r\n", t0), "+OK\r\n");
    assert_eq!(redis(&mut s, "TTL b\r\n", t0), ":-1\r\n");
    assert_eq!(redis(&mut s, "PEXPIRE b 1500\r\n", t0), ":1\r\n");
    assert_eq!(redis(&mut s, "INCR b\r\n", t0), ":2\r\n");
    assert_eq!(
        redis(&mut s, "PTTL b\r\n", t0),
        ":1500\r\n",
        "INCR keeps the TTL"
    );
    assert_eq!(
        redis(&mut s, "GET b\r\n", t0.advanced(1500 * 1_000_000)),
        "$-1\r\n"
    );
    assert_eq!(redis(&mut s, "GET a\r\n", t0.advanced(10 * S)), "$-1\r\n");
    assert_eq!(redis(&mut s, "SET c 1 PX 100\r\n", t0), "+OK\r\n");
    assert_eq!(redis(&mut s, "DBSIZE\r\n", t0.advanced(S)), ":0\r\n");
    assert_eq!(
        redis(&mut s, "SET d 1\r\nEXPIRE d -1\r\nEXISTS d\r\n", t0),
        "+OK\r\n:1\r\n:0\r\n"
    );
}

#[test]
fn redis_and_memcached_share_items() {
    let mut s = Store::new(StoreConfig::default());
    let t0 = common::clock();
    assert_eq!(mc(&mut s, "set k 42 0 5\r\nhello\r\n", t0), "STORED\r\n");
    assert_eq!(redis(&mut s, "GET k\r\n", t0), "$5\r\nhello\r\n");
    assert_eq!(redis(&mut s, "SET k world\r\n", t0), "+OK\r\n");
    assert_eq!(
        mc(&mut s, "get k\r\n", t0),
        "VALUE k 0 5\r\nworld\r\nEND\r\n",
        "Redis SET writes flags 0"
    );
}

#[test]
fn sharded_is_correct_from_any_thread() {
    let sh = Sharded::new(4, StoreConfig::default());
    let now = common::clock();
    std::thread::scope(|sc| {
        for t in 0..4 {
            let sh = &sh;
            sc.spawn(move || {
                let mut b = sh;
                for i in 0..500 {
                    let cmd = format!("set k{t}-{i} 0 0 1\r\nx\r\nincr ctr 1\r\n");
                    let r = mc(&mut b, &cmd, now);
                    assert!(r.starts_with("STORED\r\n") || r.contains("NOT_FOUND"));
                }
            });
        }
    });
    let mut b = &sh;
    assert_eq!(redis(&mut b, "DBSIZE\r\n", now), ":2000\r\n");
    assert_eq!(sh.shards(), 4);
    let mut cas = Vec::new();
    for i in 0..50 {
        let r = mc(&mut b, &format!("gets k0-{i}\r\n"), now);
        cas.push(r.split_whitespace().nth(4).unwrap().to_string());
    }
    cas.sort();
    cas.dedup();
    assert_eq!(cas.len(), 50, "CAS ids unique across shards");
}
