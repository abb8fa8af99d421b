//! The interpreter on small programs: bit<N> arithmetic, slices and concatenation, tables of
//! every match kind, header stacks, registers, counters, hashes, random, multicast, clone,
//! recirculation, timestamps, truncate, checksums, exit.

use p4sim::control::ControlFile;
use p4sim::{PacketError, Switch};

/// A v1model program around a 4-byte header `h` (a, b, c) and an 8-byte header `o` (x, y);
/// `b`'s high nibble says how many 1-byte `items` follow (a stack of 4).
const TEMPLATE: &str = r#"
#include <core.p4>
#include <v1model.p4>
header h_t { bit<8> a; bit<8> b; bit<16> c; }
header o_t { bit<32> x; bit<32> y; }
header item_t { bit<8> v; }
struct hs { h_t h; o_t o; item_t[4] items; }
struct m_t { @field_list(0) bit<8> pass; bit<8> n; }
parser P(packet_in pkt, out hs hdr, inout m_t meta, inout standard_metadata_t sm) {
    state start {
        pkt.extract(hdr.h);
        pkt.extract(hdr.o);
        meta.n = (bit<8>)hdr.h.b[7:4];
        transition select(meta.n) { 0: accept; default: items; }
    }
    state items {
        pkt.extract(hdr.items.next);
        meta.n = meta.n - 1;
        transition select(meta.n) { 0: accept; default: items; }
    }
}
control V(inout hs hdr, inout m_t meta) { apply { } }
control I(inout hs hdr, inout m_t meta, inout standard_metadata_t sm) {
    DECLS
    apply {
        sm.egress_spec = 1;
        BODY
    }
}
control E(inout hs hdr, inout m_t meta, inout standard_metadata_t sm) { apply { EGRESS } }
control C(inout hs hdr, inout m_t meta) { apply { COMPUTE } }
control D(packet_out pkt, in hs hdr) {
    apply { pkt.emit(hdr.h); pkt.emit(hdr.o); pkt.emit(hdr.items); }
}
V1Switch(P(), V(), I(), E(), C(), D()) main;
"#;

fn program(decls: &str, body: &str, egress: &str, compute: &str) -> String {
    TEMPLATE
        .replace("DECLS", decls)
        .replace("BODY", body)
        .replace("EGRESS", egress)
        .replace("COMPUTE", compute)
}

fn switch(decls: &str, body: &str, egress: &str, compute: &str, entries: &str) -> Switch {
    let src = program(decls, body, egress, compute);
    let mut sw = Switch::load(&src, 3).unwrap_or_else(|e| panic!("{e}\n{src}"));
    if !entries.is_empty() {
        ControlFile::from_json(entries)
            .unwrap()
            .install(&mut sw)
            .unwrap();
    }
    sw
}

fn pkt(a: u8, b: u8, c: u16) -> Vec<u8> {
    let mut p = vec![a, b];
    p.extend_from_slice(&c.to_be_bytes());
    p.extend_from_slice(&[0; 8]);
    p
}

fn xy(out: &[u8]) -> (u32, u32) {
    (
        u32::from_be_bytes([out[4], out[5], out[6], out[7]]),
        u32::from_be_bytes([out[8], out[9], out[10], out[11]]),
    )
}

fn one(sw: &mut Switch, p: &[u8]) -> (u16, Vec<u8>) {
    let mut tx = sw.run(0, p, 0, 16).unwrap();
    assert_eq!(tx.len(), 1, "{tx:?}");
    tx.remove(0)
}

#[test]
fn bit_arithmetic_slices_concat() {
    let body = "
        hdr.o.x = (hdr.h.a + hdr.h.b) ++ (hdr.h.a |+| hdr.h.b) ++ (hdr.h.a |-| hdr.h.b) ++ (hdr.h.a - hdr.h.b);
        hdr.o.y = hdr.h.c[11:4] ++ hdr.h.c[15:12] ++ (bit<4>)(hdr.h.c >> 12) ++ (hdr.h.c << 4);
        hdr.h.c[3:0] = 4w0xf;
        hdr.h.b = hdr.h.a > hdr.h.b ? ~hdr.h.b : -hdr.h.b;";
    let mut sw = switch("", body, "", "", "");
    let (port, out) = one(&mut sw, &pkt(250, 10, 0xabcd));
    assert_eq!(port, 1);
    assert_eq!(xy(&out), (0x04_ff_f0_f0, 0xbcaa_bcd0));
    assert_eq!(&out[1..4], &[!10u8, 0xab, 0xcf]);
    let (_, out) = one(&mut sw, &pkt(5, 10, 0));
    assert_eq!(xy(&out).0, 0x0f_0f_00_fb);
    assert_eq!(out[1], 10u8.wrapping_neg());
}

#[test]
fn tables_of_each_match_kind() {
    let decls = "
        action set_x(bit<32> v) { hdr.o.x = v; }
        action set_y(bit<32> v) { hdr.o.y = v; }
        action add_y(bit<32> v) { hdr.o.y = hdr.o.y + v; }
        action stop() { exit; }
        table by_c { key = { hdr.h.c: lpm; } actions = { set_x; NoAction; } default_action = set_x(7); }
        table by_a { key = { hdr.h.a: ternary; } actions = { set_y; stop; } default_action = set_y(0); }
        table by_b { key = { hdr.h.b: range; } actions = { add_y; NoAction; } default_action = NoAction(); }";
    let body = "
        by_c.apply();
        switch (by_a.apply().action_run) {
            stop: { hdr.o.y = 999; }
            default: { }
        }
        if (by_b.apply().hit) { hdr.o.y = hdr.o.y + 1000; }";
    let entries = r#"{ "table_entries": [
        { "table": "by_c", "matches": ["0xab00/8"], "action": "set_x", "params": { "v": "1" } },
        { "table": "by_c", "matches": ["0xabc0/12"], "action": "set_x", "params": { "v": "2" } },
        { "table": "by_a", "matches": ["0x10&&&0xf0"], "action": "set_y", "params": { "v": "10" }, "priority": 1 },
        { "table": "by_a", "matches": ["0x12&&&0xff"], "action": "set_y", "params": { "v": "20" }, "priority": 5 },
        { "table": "by_a", "matches": ["0xee"], "action": "stop", "params": {} },
        { "table": "by_b", "matches": ["2..5"], "action": "add_y", "params": { "v": "3" } }
    ] }"#;
    let mut sw = switch(decls, body, "", "", entries);
    assert_eq!(xy(&one(&mut sw, &pkt(0x12, 3, 0xabcd)).1), (2, 1023));
    assert_eq!(xy(&one(&mut sw, &pkt(0x13, 6, 0xab0d)).1), (1, 10));
    assert_eq!(xy(&one(&mut sw, &pkt(0x33, 1, 0x1234)).1), (7, 0));
    // exit inside the table's action ends the control: y stays as it came in.
    assert_eq!(xy(&one(&mut sw, &pkt(0xee, 1, 0)).1), (7, 0));
}

#[test]
fn header_stack_loop_and_parser_errors() {
    let body = "
        if (hdr.items[2].isValid()) { hdr.o.x = (bit<32>)hdr.items[2].v; }
        if (sm.parser_error == error.StackOutOfBounds) { hdr.o.y = 1; }
        if (sm.parser_error == error.PacketTooShort) { hdr.o.y = 2; }";
    let mut sw = switch("", body, "", "", "");
    let mut p = pkt(0, 0x30, 0);
    p.extend_from_slice(&[7, 8, 9, 0xaa]);
    let (_, out) = one(&mut sw, &p);
    assert_eq!(xy(&out), (9, 0));
    assert_eq!(out.len(), p.len(), "items re-emitted, payload kept");
    let mut p = pkt(0, 0x50, 0);
    p.extend_from_slice(&[1, 2, 3, 4, 5]);
    assert_eq!(xy(&one(&mut sw, &p).1).1, 1);
    let mut p = pkt(0, 0x30, 0);
    p.push(1);
    assert_eq!(xy(&one(&mut sw, &p).1).1, 2);
    assert_eq!(sw.stats.parser_errors, 2);
}

#[test]
fn registers_counters_and_bad_indices() {
    let decls = "register<bit<32>>(4) r; counter(4, CounterType.packets_and_bytes) hits;";
    let body = "
        bit<32> v;
        r.read(v, (bit<32>)hdr.h.a);
        v = v + (bit<32>)hdr.h.b;
        r.write((bit<32>)hdr.h.a, v);
        hdr.o.x = v;
        hits.count((bit<32>)hdr.h.a);";
    let mut sw = switch(decls, body, "", "", "");
    let read_line = 1 + program(decls, body, "", "")
        .lines()
        .position(|l| l.contains("r.read("))
        .unwrap();
    for i in 1..=3u32 {
        assert_eq!(xy(&one(&mut sw, &pkt(1, 5, 0)).1).0, 5 * i);
    }
    assert_eq!(sw.register_read("r", 1).unwrap(), 15);
    assert_eq!(sw.counter_read("I.hits", 1).unwrap(), (3, 36));
    match sw.run(0, &pkt(9, 0, 0), 0, 4) {
        Err(PacketError::Index {
            line,
            index: 9,
            size: 4,
            ..
        }) => assert_eq!(line, read_line),
        r => panic!("{r:?}"),
    }
}

#[test]
fn hashes_random_and_checksum() {
    let body = "
        hash(hdr.o.x, HashAlgorithm.crc32, 32w0, { hdr.h.a, hdr.h.b, hdr.h.c }, 64w0x100000000);
        hash(hdr.o.y, HashAlgorithm.identity, 32w5, { hdr.h.c }, 32w1000);
        random(hdr.h.a, 8w10, 8w20);";
    let compute =
        "update_checksum(true, { hdr.o.x[31:16], hdr.o.x[15:0] }, hdr.h.c, HashAlgorithm.csum16);";
    let mut sw = switch("", body, "", compute, "");
    let (_, out) = one(&mut sw, &pkt(b'1', b'2', u16::from_be_bytes(*b"34")));
    // CRC-32 of "1234"; identity: 5 + 0x3334 % 1000.
    assert_eq!(xy(&out), (0x9be3_e0a3, 5 + 0x3334 % 1000));
    let sum = 0x9be3u32 + 0xe0a3;
    let folded = (sum & 0xffff) + (sum >> 16);
    assert_eq!(u16::from_be_bytes([out[2], out[3]]), !(folded as u16));
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let a = one(&mut sw, &pkt(0, 0, 0)).1[0];
        assert!((10..=20).contains(&a), "{a}");
        seen.insert(a);
    }
    assert!(seen.len() > 5);
}

#[test]
fn multicast_clone_recirculate_timestamps_truncate() {
    // Multicast: replicas carry their rid.
    let mut sw = switch(
        "",
        "sm.mcast_grp = 7;",
        "hdr.o.y = (bit<32>)sm.egress_rid;",
        "",
        r#"{ "multicast_groups": [ { "group": 7, "replicas": [ { "port": 2, "rid": 0 }, { "port": 3, "rid": 1 } ] } ] }"#,
    );
    let tx = sw.run(0, &pkt(0, 0, 0), 0, 4).unwrap();
    let got: Vec<(u16, u32)> = tx.iter().map(|(p, b)| (*p, xy(b).1)).collect();
    assert_eq!(got, [(2, 0), (3, 1)]);
    // I2E clone: the packet as parsed, instance type 1, to the session's port; E2E clone:
    // the egress result through egress again, instance type 2.
    let i2e = (
        "hdr.h.a = 99; clone(CloneType.I2E, 32w5);",
        "hdr.o.y = sm.instance_type;",
    );
    let e2e = (
        "",
        "if (sm.instance_type == 0) { hdr.h.a = 7; clone(CloneType.E2E, 32w5); } hdr.o.y = sm.instance_type;",
    );
    for ((body, egress), want) in [
        (i2e, [(1, 99, 0), (9, 1, 1)]),
        (e2e, [(1, 7, 0), (9, 7, 2)]),
    ] {
        let sessions = r#"{ "clone_sessions": [ { "session": 5, "port": 9 } ] }"#;
        let mut sw = switch("", body, egress, "", sessions);
        let mut tx = sw.run(0, &pkt(1, 0, 0), 0, 4).unwrap();
        tx.sort();
        let got: Vec<(u16, u8, u32)> = tx.iter().map(|(p, b)| (*p, b[0], xy(b).1)).collect();
        assert_eq!(got, want, "{body} / {egress}");
    }
    // An I2E clone with a field list carries the values ingress left in it (BMv2 copies
    // them when it makes the clone); metadata outside the list are 0.
    let sessions = r#"{ "clone_sessions": [ { "session": 5, "port": 9 } ] }"#;
    let mut sw = switch(
        "",
        "meta.pass = 42; meta.n = 7; clone_preserving_field_list(CloneType.I2E, 32w5, 0);",
        "hdr.o.x = (bit<32>)meta.pass; hdr.o.y = (bit<32>)meta.n;",
        "",
        sessions,
    );
    let mut tx = sw.run(0, &pkt(0, 0, 0), 0, 4).unwrap();
    tx.sort();
    let got: Vec<(u16, (u32, u32))> = tx.iter().map(|(p, b)| (*p, xy(b))).collect();
    assert_eq!(got, [(1, (42, 7)), (9, (42, 0))]);
    // Recirculation keeps field list 0 only.
    let body = "if (sm.instance_type == 4) { hdr.o.x = (bit<32>)meta.pass; hdr.o.y = sm.ingress_global_timestamp[31:0]; } else { meta.pass = 42; }";
    let mut sw = switch(
        "",
        body,
        "if (sm.instance_type == 0) { recirculate_preserving_field_list(0); }",
        "",
        "",
    );
    let tx = sw.run(0, &pkt(0, 0, 0), 5_000_000, 4).unwrap();
    assert_eq!(tx.len(), 1);
    assert_eq!(xy(&tx[0].1), (42, 5000));
    assert_eq!(sw.stats.recirculated, 1);
    // A program that always recirculates hits the pass limit.
    let mut sw = switch("", "", "recirculate_preserving_field_list(0);", "", "");
    assert_eq!(
        sw.run(0, &pkt(0, 0, 0), 0, 10),
        Err(PacketError::PassLimit(10))
    );
    // truncate and mark_to_drop.
    let mut sw = switch(
        "",
        "truncate(6); if (hdr.h.a == 1) { mark_to_drop(sm); }",
        "",
        "",
        "",
    );
    assert_eq!(one(&mut sw, &pkt(0, 0, 0)).1.len(), 6);
    assert!(sw.run(0, &pkt(1, 0, 0), 0, 4).unwrap().is_empty());
}

/// `random` takes injected draws, in order, as `lo + d mod (hi - lo + 1)`; used up, a packet
/// fails with the statement's line; a full-width range works.
#[test]
fn random_with_injected_draws() {
    let mut sw = switch(
        "",
        "random(hdr.o.x, 32w10, 32w19); random(hdr.o.y, 32w0, 32w0xffffffff);",
        "",
        "",
        "",
    );
    sw.rt.rng.inject([23, 7, 4, u64::from(u32::MAX) + 5]);
    let out = sw.run(0, &pkt(0, 0, 0), 0, 1).unwrap();
    assert_eq!(xy(&out[0].1), (13, 7));
    let out = sw.run(0, &pkt(0, 0, 0), 0, 1).unwrap();
    assert_eq!(xy(&out[0].1), (14, 4));
    assert_eq!(sw.rt.rng.injected_left(), Some(0));
    match sw.run(0, &pkt(0, 0, 0), 0, 1) {
        Err(PacketError::Runtime { line, msg, .. }) => {
            assert!(msg.contains("injected draws are used up"), "{msg}");
            let src = program("", "random(", "", "");
            let want = src.lines().position(|l| l.contains("random(")).unwrap() + 1;
            assert_eq!(line, want, "the random statement's line");
        }
        other => panic!("{other:?}"),
    }
    // Seeded (not injected): in range, and the same seed repeats itself.
    let mut a = switch("", "random(hdr.o.x, 32w100, 32w199);", "", "", "");
    let mut b = a.clone();
    for _ in 0..50 {
        let (x, y) = (
            a.run(0, &pkt(0, 0, 0), 0, 1).unwrap(),
            b.run(0, &pkt(0, 0, 0), 0, 1).unwrap(),
        );
        assert_eq!(x, y);
        assert!((100..200).contains(&xy(&x[0].1).0));
    }
}
