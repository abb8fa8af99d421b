//! Every command of every codec once, with the replies the real servers give (the
//! differential tests compare many more sequences), plus back-pressure, UDP framing and R2P2.

mod common;

use ferrix_kv::memcache::Memcache;
use ferrix_kv::memcache::binary::{HEADER_LEN, op, status};
use ferrix_kv::memcache::udp::{Frame, UdpConfig, handle_datagram};
use ferrix_kv::r2p2::{BadRequest, handle_request, is_read_only};
use ferrix_kv::resp::Resp;
use ferrix_kv::{Codec, Limits, Store, StoreConfig};

fn run<C: Codec>(c: &mut C, s: &mut Store, input: &[u8]) -> (String, bool) {
    let (r, closed) = common::drive(c, s, input, &[input.len()], common::clock());
    (String::from_utf8_lossy(&r).into_owned(), closed)
}

#[test]
fn memcached_ascii_commands() {
    let mut s = Store::new(StoreConfig::default());
    let mut c = Memcache::new(Limits::default());
    let cases: &[(&str, &str)] = &[
        ("set a 5 0 3\r\nabc\r\n", "STORED\r\n"),
        ("get a b\r\n", "VALUE a 5 3\r\nabc\r\nEND\r\n"),
        ("add a 0 0 1\r\nx\r\n", "NOT_STORED\r\n"),
        ("add b 0 0 1\r\nx\r\n", "STORED\r\n"),
        ("replace c 0 0 1\r\nx\r\n", "NOT_STORED\r\n"),
        ("append a 0 0 2\r\nde\r\n", "STORED\r\n"),
        ("prepend a 0 0 1\r\n_\r\n", "STORED\r\n"),
        ("get a\r\n", "VALUE a 5 6\r\n_abcde\r\nEND\r\n"),
        ("delete b\r\n", "DELETED\r\n"),
        ("delete b\r\n", "NOT_FOUND\r\n"),
        (
            "delete a 5\r\n",
            "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n",
        ),
        ("set n 0 0 2\r\n10\r\n", "STORED\r\n"),
        ("incr n 18446744073709551615\r\n", "9\r\n"),
        ("decr n 100\r\n", "0\r\n"),
        (
            "incr a 1\r\n",
            "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
        ),
        (
            "incr n x\r\n",
            "CLIENT_ERROR invalid numeric delta argument\r\n",
        ),
        ("incr zz 1\r\n", "NOT_FOUND\r\n"),
        ("set a 0 0 1 noreply\r\nx\r\n", ""),
        (
            "set a 0 0 1\r\nxyz\r\n",
            "CLIENT_ERROR bad data chunk\r\nERROR\r\n",
        ),
        (
            "set a 0 0 -1\r\n",
            "CLIENT_ERROR bad command line format\r\n",
        ),
        ("set a 0 0\r\n", "ERROR\r\n"),
        ("bogus\r\n", "ERROR\r\n"),
        ("verbosity 1\r\n", "OK\r\n"),
        ("version\r\n", "VERSION 1.6.18-ferrix\r\n"),
        ("flush_all\r\n", "OK\r\n"),
        ("get a\r\n", "END\r\n"),
    ];
    for (req, want) in cases {
        assert_eq!(run(&mut c, &mut s, req.as_bytes()).0, *want, "{req:?}");
    }
    let long = "k".repeat(251);
    assert_eq!(
        run(&mut c, &mut s, format!("get {long}\r\n").as_bytes()).0,
        "CLIENT_ERROR bad command line format\r\n"
    );
    let (r, _) = run(&mut c, &mut s, b"gets a\r\nset a 0 0 1\r\nx\r\ngets a\r\n");
    let cas: u64 = r
        .lines()
        .find(|l| l.starts_with("VALUE"))
        .unwrap()
        .split(' ')
        .nth(4)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        run(
            &mut c,
            &mut s,
            format!("cas a 0 0 1 {}\r\ny\r\n", cas + 1).as_bytes()
        )
        .0,
        "EXISTS\r\n"
    );
    assert_eq!(
        run(
            &mut c,
            &mut s,
            format!("cas a 0 0 1 {cas}\r\ny\r\n").as_bytes()
        )
        .0,
        "STORED\r\n"
    );
    assert!(run(&mut c, &mut s, b"stats\r\n").0.ends_with("END\r\n"));
    // Too large: refused, the data swallowed, the connection goes on.
    let mut big = b"set a 0 0 2000000\r\n".to_vec();
    big.resize(big.len() + 2_000_000, b'x');
    big.extend_from_slice(b"\r\nget a\r\n");
    assert_eq!(
        run(&mut c, &mut s, &big).0,
        "SERVER_ERROR object too large for cache\r\nEND\r\n"
    );
    assert_eq!(
        run(&mut c, &mut s, b"quit\r\nget a\r\n"),
        (String::new(), true)
    );
}

fn bin(opcode: u8, key: &[u8], extras: &[u8], value: &[u8], cas: u64) -> Vec<u8> {
    let mut v = vec![0x80, opcode];
    v.extend_from_slice(&(key.len() as u16).to_be_bytes());
    v.extend_from_slice(&[extras.len() as u8, 0, 0, 0]);
    v.extend_from_slice(&((extras.len() + key.len() + value.len()) as u32).to_be_bytes());
    v.extend_from_slice(&7u32.to_be_bytes());
    v.extend_from_slice(&cas.to_be_bytes());
    v.extend_from_slice(extras);
    v.extend_from_slice(key);
    v.extend_from_slice(value);
    v
}

/// (opcode, status, cas, body) of each reply.
fn replies(r: &[u8]) -> Vec<(u8, u16, u64, Vec<u8>)> {
    let mut v = Vec::new();
    let mut r = r;
    while r.len() >= HEADER_LEN {
        let n = u32::from_be_bytes(r[8..12].try_into().unwrap()) as usize;
        assert_eq!(
            u32::from_be_bytes(r[12..16].try_into().unwrap()),
            7,
            "opaque echoed"
        );
        v.push((
            r[1],
            u16::from_be_bytes([r[6], r[7]]),
            u64::from_be_bytes(r[16..24].try_into().unwrap()),
            r[HEADER_LEN..HEADER_LEN + n].to_vec(),
        ));
        r = &r[HEADER_LEN + n..];
    }
    v
}

#[test]
fn memcached_binary_commands() {
    let mut s = Store::new(StoreConfig::default());
    let mut c = Memcache::new(Limits::default());
    let ex = [0, 0, 0, 9, 0, 0, 0, 0];
    let mut go = |req: Vec<u8>| {
        replies(
            common::drive(&mut c, &mut s, &req, &[req.len()], common::clock())
                .0
                .as_slice(),
        )
    };
    let r = go(bin(op::SET, b"k", &ex, b"v1", 0));
    assert_eq!((r[0].1, r[0].2 != 0), (status::OK, true));
    let cas = r[0].2;
    assert_eq!(
        go(bin(op::GET, b"k", &[], &[], 0)),
        vec![(op::GET, 0, cas, b"\0\0\0\x09v1".to_vec())]
    );
    assert_eq!(
        go(bin(op::GETK, b"k", &[], &[], 0))[0].3,
        b"\0\0\0\x09kv1".to_vec()
    );
    assert!(
        go(bin(op::GETQ, b"zz", &[], &[], 0)).is_empty(),
        "quiet miss"
    );
    assert!(
        go(bin(op::SETQ, b"q", &ex, b"x", 0)).is_empty(),
        "quiet success"
    );
    assert_eq!(
        go(bin(op::ADD, b"k", &ex, b"x", 0))[0].1,
        status::KEY_EEXISTS
    );
    assert_eq!(
        go(bin(op::REPLACE, b"zz", &ex, b"x", 0))[0].1,
        status::KEY_ENOENT
    );
    assert_eq!(
        go(bin(op::SET, b"k", &ex, b"x", cas + 1))[0].1,
        status::KEY_EEXISTS
    );
    assert_eq!(
        go(bin(op::DELETE, b"zz", &[], &[], 0))[0].3,
        b"Not found".to_vec()
    );
    let mut d = 5u64.to_be_bytes().to_vec();
    d.extend_from_slice(&100u64.to_be_bytes());
    d.extend_from_slice(&0u32.to_be_bytes());
    assert_eq!(
        go(bin(op::INCREMENT, b"n", &d, &[], 0))[0].3,
        100u64.to_be_bytes().to_vec(),
        "created with initial"
    );
    assert_eq!(
        go(bin(op::DECREMENT, b"n", &d, &[], 0))[0].3,
        95u64.to_be_bytes().to_vec()
    );
    assert_eq!(
        go(bin(op::INCREMENT, b"k", &d, &[], 0))[0].1,
        status::DELTA_BADVAL
    );
    assert_eq!(
        go(bin(op::VERSION, &[], &[], &[], 0))[0].3,
        b"1.6.18-ferrix".to_vec()
    );
    assert_eq!(go(bin(op::NOOP, &[], &[], &[], 0)).len(), 1);
    assert!(
        go(bin(op::STAT, &[], &[], &[], 0))
            .last()
            .unwrap()
            .3
            .is_empty()
    );
    assert_eq!(
        go(bin(0x55, &[], &[], b"xx", 0))[0].1,
        status::UNKNOWN_COMMAND
    );
    assert_eq!(go(bin(op::FLUSH, &[], &[], &[], 0))[0].1, status::OK);
    assert_eq!(go(bin(op::GET, b"k", &[], &[], 0))[0].1, status::KEY_ENOENT);
    // Invalid arguments close the connection.
    let (r, closed) = common::drive(
        &mut c,
        &mut s,
        &bin(op::GET, b"k", &[1], &[], 0),
        &[100],
        common::clock(),
    );
    assert!(closed && replies(&r)[0].1 == status::EINVAL);
}

#[test]
fn resp_commands() {
    let mut s = Store::new(StoreConfig::default());
    let mut c = Resp::new(Limits::default());
    let cases: &[(&str, &str)] = &[
        ("PING\r\n", "+PONG\r\n"),
        ("*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n", "$2\r\nhi\r\n"),
        ("SET a 1\r\n", "+OK\r\n"),
        ("SET a 2 NX\r\n", "$-1\r\n"),
        ("SET a 2 XX GET\r\n", "$1\r\n1\r\n"),
        (
            "SET a 1 EX 0\r\n",
            "-ERR invalid expire time in 'set' command\r\n",
        ),
        ("SET a 1 NX XX\r\n", "-ERR syntax error\r\n"),
        ("GETSET a 5\r\n", "$1\r\n2\r\n"),
        (
            "INCR a\r\nINCRBY a 10\r\nDECR a\r\n",
            ":6\r\n:16\r\n:15\r\n",
        ),
        (
            "SET s x\r\nINCR s\r\n",
            "+OK\r\n-ERR value is not an integer or out of range\r\n",
        ),
        (
            "MSET x 1 y 2\r\nMGET x y z\r\n",
            "+OK\r\n*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n",
        ),
        ("EXISTS x y z x\r\nDEL x z\r\n", ":3\r\n:1\r\n"),
        (
            "EXPIRE y 100\r\nTTL y\r\nPTTL y\r\nTTL z\r\nTTL a\r\n",
            ":1\r\n:100\r\n:100000\r\n:-2\r\n:-1\r\n",
        ),
        ("DBSIZE\r\n", ":3\r\n"),
        ("KEYS [ay]\r\n", "*2\r\n"),
        (
            "SELECT 0\r\nSELECT 1\r\n",
            "+OK\r\n-ERR DB index is out of range\r\n",
        ),
        (
            "foo a b\r\n",
            "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n",
        ),
        (
            "GET\r\n",
            "-ERR wrong number of arguments for 'get' command\r\n",
        ),
        ("CONFIG GET save\r\n", "*2\r\n$4\r\nsave\r\n$0\r\n\r\n"),
        (
            "CONFIG GET appendonly\r\n",
            "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n",
        ),
        ("COMMAND DOCS\r\n", "*0\r\n"),
        (
            "SET \"sp ace\" 'it''s'\r\n",
            "-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
    ];
    for (req, want) in cases {
        let (got, _) = run(&mut c, &mut s, req.as_bytes());
        assert!(got.starts_with(want), "{req:?}: got {got:?}, want {want:?}");
        c = Resp::new(Limits::default());
    }
    assert_eq!(
        run(
            &mut c,
            &mut s,
            b"SET \"sp ace\" \"a\\x41\\n\"\r\nGET \"sp ace\"\r\n"
        )
        .0,
        "+OK\r\n$3\r\naA\n\r\n"
    );
    assert!(run(&mut c, &mut s, b"INFO\r\n").0.contains("redis_version"));
    assert!(run(&mut c, &mut s, b"COMMAND\r\n").0.starts_with('*'));
    assert_eq!(
        run(&mut c, &mut s, b"FLUSHDB\r\nDBSIZE\r\n").0,
        "+OK\r\n:0\r\n"
    );
    assert_eq!(
        run(&mut c, &mut s, b"QUIT\r\nPING\r\n"),
        ("+OK\r\n".into(), true)
    );
}

#[test]
fn pipelined_client_that_never_reads_is_bounded() {
    let mut s = Store::new(StoreConfig::default());
    let limits = Limits {
        max_output: 4096,
        max_line: 1024,
        ..Limits::default()
    };
    let mut input = Vec::new();
    for _ in 0..10_000 {
        input.extend_from_slice(b"*2\r\n$4\r\nECHO\r\n$20\r\n01234567890123456789\r\n");
    }
    let mut c = Resp::new(limits);
    let mut out = Vec::new();
    let p = c.feed(&input, &mut out, &mut s, common::clock());
    assert!(p.blocked && !p.close);
    assert!(out.len() < 4096 + 64, "output bounded: {}", out.len());
    assert!(p.consumed < input.len() / 10);
    // memcached too, and an over-long line closes.
    let mut m = Memcache::new(limits);
    let mut out = Vec::new();
    let gets = b"get x\r\nversion\r\n".repeat(10_000);
    let p = m.feed(&gets, &mut out, &mut s, common::clock());
    assert!(p.blocked && out.len() < 4096 + 64);
    let mut m = Memcache::new(limits);
    let p = m.feed(&vec![b'a'; 2000], &mut Vec::new(), &mut s, common::clock());
    assert!(p.close);
}

#[test]
fn udp_frames_and_multi_datagram_replies() {
    let mut s = Store::new(StoreConfig::default());
    let cfg = UdpConfig::default();
    let mut set = vec![0, 42, 0, 0, 0, 1, 0, 0];
    set.extend_from_slice(b"set big 0 0 3000\r\n");
    set.resize(set.len() + 3000, b'v');
    set.extend_from_slice(b"\r\n");
    let mut sent = Vec::new();
    assert_eq!(
        handle_datagram(&set, &cfg, &mut s, common::clock(), |d| sent
            .push(d.to_vec())),
        1
    );
    assert_eq!(&sent[0][8..], b"STORED\r\n");
    let mut get = vec![0, 43, 0, 0, 0, 1, 0, 0];
    get.extend_from_slice(b"get big\r\n");
    sent.clear();
    let n = handle_datagram(&get, &cfg, &mut s, common::clock(), |d| {
        sent.push(d.to_vec())
    });
    assert_eq!(n, 3);
    let mut payload = Vec::new();
    for (i, d) in sent.iter().enumerate() {
        assert!(d.len() <= 1400);
        let f = Frame::parse(d).unwrap();
        assert_eq!((f.request_id, f.sequence, f.total), (43, i as u16, 3));
        payload.extend_from_slice(&d[8..]);
    }
    assert!(payload.starts_with(b"VALUE big 0 3000\r\n") && payload.ends_with(b"\r\nEND\r\n"));
    // Multi-datagram requests and runts are dropped.
    assert_eq!(
        handle_datagram(
            &[0, 1, 0, 0, 0, 2, 0, 0, b'x'],
            &cfg,
            &mut s,
            common::clock(),
            |_| ()
        ),
        0
    );
    assert_eq!(
        handle_datagram(&[0, 1], &cfg, &mut s, common::clock(), |_| ()),
        0
    );
}

#[test]
fn r2p2_one_command_per_message_and_read_only_flag() {
    let mut s = Store::new(StoreConfig::default());
    let now = common::clock();
    let mut out = Vec::new();
    assert_eq!(
        handle_request(
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
            &mut out,
            &mut s,
            now
        ),
        Ok(())
    );
    assert_eq!(out, b"+OK\r\n");
    out.clear();
    assert_eq!(
        handle_request(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", &mut out, &mut s, now),
        Ok(())
    );
    assert_eq!(out, b"$1\r\nv\r\n");
    out.clear();
    assert_eq!(
        handle_request(b"GET k\r\nGET k\r\n", &mut out, &mut s, now),
        Err(BadRequest::Trailing)
    );
    assert_eq!(
        handle_request(b"*2\r\n$3\r\nGET", &mut Vec::new(), &mut s, now),
        Err(BadRequest::Incomplete)
    );
    for ro in [
        "GET k", "MGET a b", "EXISTS k", "TTL k", "PTTL k", "KEYS *", "DBSIZE", "PING", "ECHO x",
        "INFO",
    ] {
        assert!(is_read_only(format!("{ro}\r\n").as_bytes()), "{ro}");
    }
    for rw in [
        "SET k v",
        "DEL k",
        "INCR k",
        "EXPIRE k 1",
        "FLUSHDB",
        "bogus",
        "",
    ] {
        assert!(!is_read_only(format!("{rw}\r\n").as_bytes()), "{rw}");
    }
}

#[test]
fn multi_key_reads_past_the_reply_limit_get_an_error_not_gigabytes() {
    let limits = Limits {
        max_reply: 64 * 1024,
        ..Limits::default()
    };
    let mut s = Store::new(StoreConfig::default());
    let big = vec![b'x'; 20_000];
    let mut set = b"set big 0 0 20000\r\n".to_vec();
    set.extend_from_slice(&big);
    set.extend_from_slice(b"\r\nset small 0 0 1\r\ny\r\n");
    let mut c = Memcache::new(limits);
    let mut out = Vec::new();
    c.feed(&set, &mut out, &mut s, common::clock());
    assert_eq!(out, b"STORED\r\nSTORED\r\n");
    // Three copies fit (60 kB), a line naming it 1,000 times does not: the whole command is
    // answered with memcached's error, and the connection goes on.
    for (keys, fits) in [(3, true), (1000, false)] {
        let line = format!("get{}\r\nget small\r\n", " big".repeat(keys));
        out.clear();
        c.feed(line.as_bytes(), &mut out, &mut s, common::clock());
        let small = b"VALUE small 0 1\r\ny\r\nEND\r\n";
        if fits {
            assert_eq!(out.len(), 3 * (20_000 + 21) + 5 + small.len());
        } else {
            let mut want = b"SERVER_ERROR out of memory writing get response\r\n".to_vec();
            want.extend_from_slice(small);
            assert_eq!(out, want);
        }
    }
    // RESP MGET the same way.
    let mut r = Resp::new(limits);
    let mut cmd = format!("*{}\r\n$4\r\nMGET\r\n", 1001).into_bytes();
    for _ in 0..1000 {
        cmd.extend_from_slice(b"$3\r\nbig\r\n");
    }
    cmd.extend_from_slice(b"*2\r\n$3\r\nGET\r\n$5\r\nsmall\r\n");
    out.clear();
    r.feed(&cmd, &mut out, &mut s, common::clock());
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("-ERR reply too large"), "{text}");
    assert!(text.ends_with("\r\n$1\r\ny\r\n"), "{text}");
    assert!(out.len() < 200, "{} bytes", out.len());
}
