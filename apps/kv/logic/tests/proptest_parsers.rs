//! Parser robustness: random bytes never panic any codec and never grow output past the
//! limit plus one reply; valid command streams give the same replies whatever way they are
//! split into reads.

mod common;

use ferrix_kv::memcache::Memcache;
use ferrix_kv::memcache::udp::{UdpConfig, handle_datagram};
use ferrix_kv::resp::Resp;
use ferrix_kv::{Codec, Limits, Store, StoreConfig};
use proptest::prelude::*;

fn small() -> StoreConfig {
    StoreConfig {
        mem_limit: 1 << 20,
        item_size_max: 64 * 1024,
        ..StoreConfig::default()
    }
}

fn garbage_never_panics<C: Codec>(mut c: C, input: &[u8], chunks: &[usize]) {
    let mut s = Store::new(small());
    let _ = common::drive(&mut c, &mut s, input, chunks, common::clock());
    assert!(s.used_bytes() <= small().mem_limit);
}

const MC_CMDS: &[&str] = &[
    "set a 1 0 3\r\nabc\r\n",
    "get a b\r\n",
    "gets a\r\n",
    "incr n 5\r\n",
    "set n 0 0 2\r\n10\r\n",
    "decr n 1\r\n",
    "delete a\r\n",
    "append a 0 0 1\r\nz\r\n",
    "touch a 10\r\n",
    "bogus\r\n",
    "set a 0 0 1\r\nxyz\r\n",
    "add b 0 0 1 noreply\r\nq\r\n",
    "version\r\n",
];
const RESP_CMDS: &[&str] = &[
    "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$2\r\n10\r\n",
    "GET a\r\n",
    "INCR a\r\n",
    "MGET a b\r\n",
    "SET b \"x y\"\r\n",
    "DEL b\r\n",
    "KEYS *\r\n",
    "EXISTS a b\r\n",
    "foo\r\n",
    "\r\n",
    "*0\r\n",
    "PING\r\n",
    "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n",
];

fn stream(picks: &[usize], cmds: &[&str]) -> Vec<u8> {
    picks
        .iter()
        .flat_map(|&i| cmds[i % cmds.len()].bytes())
        .collect()
}

fn replies<C: Codec + Default>(input: &[u8], chunks: &[usize]) -> Vec<u8> {
    let mut s = Store::new(small());
    common::drive(&mut C::default(), &mut s, input, chunks, common::clock()).0
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn memcached_random_bytes(input in proptest::collection::vec(any::<u8>(), 0..2048),
                              chunks in proptest::collection::vec(1usize..64, 0..32)) {
        garbage_never_panics(Memcache::default(), &input, &chunks);
        let mut bin = vec![0x80];
        bin.extend_from_slice(&input);
        garbage_never_panics(Memcache::default(), &bin, &chunks);
    }

    #[test]
    fn resp_random_bytes(input in proptest::collection::vec(any::<u8>(), 0..2048),
                         chunks in proptest::collection::vec(1usize..64, 0..32)) {
        garbage_never_panics(Resp::default(), &input, &chunks);
        let mut arr = b"*3\r\n$".to_vec();
        arr.extend_from_slice(&input);
        garbage_never_panics(Resp::default(), &arr, &chunks);
    }

    #[test]
    fn udp_random_datagrams(input in proptest::collection::vec(any::<u8>(), 0..1500)) {
        let mut s = Store::new(small());
        handle_datagram(&input, &UdpConfig::default(), &mut s, common::clock(), |d| assert!(d.len() <= 1400));
    }

    #[test]
    fn memcached_splits_do_not_change_replies(picks in proptest::collection::vec(0usize..100, 1..40),
                                              chunks in proptest::collection::vec(1usize..40, 1..200)) {
        let input = stream(&picks, MC_CMDS);
        prop_assert_eq!(replies::<Memcache>(&input, &chunks), replies::<Memcache>(&input, &[input.len()]));
    }

    #[test]
    fn resp_splits_do_not_change_replies(picks in proptest::collection::vec(0usize..100, 1..40),
                                         chunks in proptest::collection::vec(1usize..40, 1..200)) {
        let input = stream(&picks, RESP_CMDS);
        prop_assert_eq!(replies::<Resp>(&input, &chunks), replies::<Resp>(&input, &[input.len()]));
    }

    #[test]
    fn backpressure_keeps_output_bounded(picks in proptest::collection::vec(0usize..100, 1..200)) {
        let input = stream(&picks, RESP_CMDS);
        let mut s = Store::new(small());
        let mut c = Resp::new(Limits { max_output: 256, max_line: 1024, ..Limits::default() });
        let mut out = Vec::new();
        let p = c.feed(&input, &mut out, &mut s, common::clock());
        // One reply may overshoot the limit, never more.
        prop_assert!(out.len() < 256 + 1024);
        prop_assert!(p.consumed <= input.len());
    }
}
