//! The memcached UDP fast path (`udp_get::get_in_place`) against the general codec: the same
//! random datagram sequences through both, on two stores built the same way, give the same
//! reply bytes and the same counters. Seeds are reported (`KV_DIFF_SEED=N` replays one).

mod common;

use common::Rng;
use ferrix_kv::memcache::udp::{UdpConfig, handle_datagram};
use ferrix_kv::memcache::udp_get::get_in_place;
use ferrix_kv::{Store, StoreConfig};

fn store() -> Store {
    Store::new(StoreConfig {
        mem_limit: 1 << 20,
        item_size_max: 64 * 1024,
        ..StoreConfig::default()
    })
}

/// Keys: plain ones, and the edges the fast path must leave to the general one.
fn key(r: &mut Rng) -> Vec<u8> {
    match r.below(10) {
        0 => vec![b'k'; 250],
        1 => vec![b'k'; 251],
        2 => b"sp ace".to_vec(),
        3 => b"tab\tkey".to_vec(),
        4 => vec![b'x', 0x7f, b'y'],
        5 => vec![b'x', 0xc3, 0xa9],
        _ => format!("key:{}", r.below(6)).into_bytes(),
    }
}

fn header(r: &mut Rng, id: u16) -> Vec<u8> {
    let (seq, total) = match r.below(20) {
        0 => (1, 1),
        1 => (0, 2),
        2 => (0, 0),
        _ => (0, 1),
    };
    let reserved = if r.chance(10) { 7u16 } else { 0 };
    [id, seq, total, reserved]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect()
}

fn request(r: &mut Rng, id: u16) -> Vec<u8> {
    let mut d = header(r, id);
    let k = key(r);
    match r.below(12) {
        0..=2 => {
            let len = *r.pick(&[0usize, 3, 64, 1300, 1340, 1380, 1400, 3000]);
            d.extend_from_slice(b"set ");
            d.extend_from_slice(&k);
            d.extend_from_slice(format!(" {} 0 {len}\r\n", r.below(70_000)).as_bytes());
            d.extend(std::iter::repeat_n(b'v', len));
            d.extend_from_slice(b"\r\n");
        }
        3 => {
            d.extend_from_slice(b"get ");
            d.extend_from_slice(&k);
            d.extend_from_slice(b" ");
            d.extend_from_slice(&key(r));
            d.extend_from_slice(b"\r\n");
        }
        4 => {
            d.extend_from_slice(b"gets ");
            d.extend_from_slice(&k);
            d.extend_from_slice(b"\r\n");
        }
        5 => {
            d.extend_from_slice(b"get ");
            d.extend_from_slice(&k);
        }
        6 => {
            d.extend_from_slice(b"get  ");
            d.extend_from_slice(&k);
            d.extend_from_slice(b"\r\n");
        }
        7 => {
            d.extend_from_slice(b"get ");
            d.extend_from_slice(&k);
            d.extend_from_slice(b"\r\nget ");
            d.extend_from_slice(&k);
            d.extend_from_slice(b"\r\n");
        }
        8 => {
            d.extend_from_slice(b"delete ");
            d.extend_from_slice(&k);
            d.extend_from_slice(b"\r\n");
        }
        _ => {
            d.extend_from_slice(b"get ");
            d.extend_from_slice(&k);
            d.extend_from_slice(b"\r\n");
        }
    }
    if r.chance(3) {
        d.truncate(r.below(d.len() as u64 + 1) as usize);
    }
    d
}

#[test]
fn fast_path_replies_as_the_general_codec() {
    let mut fast_hits = 0;
    for seed in common::seeds(300) {
        let mut r = Rng::new(seed);
        let (mut a, mut b) = (store(), store());
        let now = common::clock();
        let max_datagram = *r.pick(&[1400usize, 200, 1500]);
        let cfg = UdpConfig {
            max_datagram,
            ..UdpConfig::default()
        };
        for i in 0..200u16 {
            let req = request(&mut r, i);
            let mut want = Vec::new();
            handle_datagram(&req, &cfg, &mut b, now, |d| want.push(d.to_vec()));
            let mut buf = req.clone();
            buf.resize(*r.pick(&[req.len(), 1514, 600]).max(&req.len()), 0xee);
            let got = match get_in_place(&mut buf, req.len(), &cfg, &mut a, now) {
                Some(n) => {
                    fast_hits += 1;
                    vec![buf[..n].to_vec()]
                }
                None => {
                    assert_eq!(buf[..req.len()], req[..], "seed {seed}: buffer touched");
                    let mut v = Vec::new();
                    handle_datagram(&req, &cfg, &mut a, now, |d| v.push(d.to_vec()));
                    v
                }
            };
            assert_eq!(
                got,
                want,
                "seed {seed} request {i}: {:?}",
                String::from_utf8_lossy(&req)
            );
            assert_eq!(a.stats(), b.stats(), "seed {seed} request {i}: counters");
        }
    }
    assert!(fast_hits > 2_000, "the fast path ran {fast_hits} times");
}
