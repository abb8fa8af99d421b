//! The JBSQ control plane: its control file round-trips through JSON, installs, prints as
//! P4Runtime text with the program's ids, and drives the `p4sim` command.

mod frames;

use p4sim::control::ControlFile;
use p4sim::control::jbsq::{self, Host, JbsqConfig, Route, Server};
use std::net::{Ipv4Addr, SocketAddrV4};

fn cfg() -> JbsqConfig {
    JbsqConfig {
        router: vec![SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 254), 8000)],
        router_mac: [2, 0, 0, 0, 0, 1],
        // Given out of address order: indices follow addresses.
        servers: vec![
            Server {
                addr: "10.0.0.9:8000".parse().unwrap(),
                mac: [2, 0, 0, 0, 1, 9],
                egress_port: 9,
            },
            Server {
                addr: "10.0.0.2:8001".parse().unwrap(),
                mac: [2, 0, 0, 0, 1, 2],
                egress_port: 2,
            },
        ],
        n: 3,
        recirc_port: 68,
        routes: vec![Route {
            net: Ipv4Addr::new(192, 168, 0, 0),
            prefix: 16,
            mac: [2, 0, 0, 0, 2, 0],
            port: 30,
        }],
        hosts: vec![],
    }
}

#[test]
fn json_round_trip_and_install() {
    let cf = cfg().control_file().unwrap();
    let back = ControlFile::from_json(&cf.to_json()).unwrap();
    assert_eq!(back, cf);
    let sw = jbsq::switch(&cfg(), 0).unwrap();
    assert_eq!(jbsq::slots(&sw, 2), [(0, 3), (0, 3)]);
    let t = sw.prog.table("server_addr").unwrap();
    let e = &sw.rt.tables[t].entries[0];
    assert_eq!(
        e.args[0],
        u128::from(u32::from(Ipv4Addr::new(10, 0, 0, 2))),
        "index 0 = lowest address"
    );
    assert!(
        ControlFile::from_json("{\"tables\": []}").is_err(),
        "unknown fields are refused"
    );
    let mut bad = cf.clone();
    bad.table_entries[0].matches = vec!["10.0.0.254".into()];
    assert!(bad.install(&mut jbsq::switch(&cfg(), 0).unwrap()).is_err());
    assert!(JbsqConfig { n: 0, ..cfg() }.control_file().is_err());
}

#[test]
fn p4runtime_text_uses_the_annotated_ids() {
    let sw = jbsq::switch(&cfg(), 0).unwrap();
    let text = cfg()
        .control_file()
        .unwrap()
        .p4runtime_text(&sw.prog, 1)
        .unwrap();
    // server_addr is @id(5), set_server @id(11); index 0 is canonical "\x00".
    assert!(
        text.contains("table_id: 33554437  # RouterIngress.server_addr"),
        "{text}"
    );
    assert!(text.contains("action_id: 16777227  # RouterIngress.set_server"));
    assert!(
        text.contains("match { field_id: 1  # meta.chosen\n        exact { value: \"\\x00\" } }")
    );
    assert!(text.contains("params { param_id: 1 value: \"\\x0a\\x00\\x00\\x02\" }  # ip"));
    assert!(text.contains("lpm { value: \"\\xc0\\xa8\\x00\\x00\" prefix_len: 16 }"));
    assert!(text.contains("register_id: 369098754  # RouterIngress.bound"));
    assert!(text.contains("is_default_action: true"));
    assert!(text.contains("priority: 30"));
    assert_eq!(text.matches("updates {").count(), 1 + 1 + 5 + 2 * 2 + 2 + 1);
}

#[test]
fn the_command_runs_hex_traces() {
    let dir = std::env::temp_dir().join(format!("p4sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let entries = dir.join("entries.json");
    std::fs::write(&entries, cfg().control_file().unwrap().to_json()).unwrap();
    // A REQ0 to the router, and a frame to 192.168.1.1 (routed by ipv4_lpm).
    let mut req = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0xcc, 8, 0];
    req.extend_from_slice(&[
        0x45, 0, 0, 50, 0, 7, 0x40, 0, 64, 17, 0, 0, 10, 0, 1, 1, 10, 0, 0, 254,
    ]);
    req.extend_from_slice(&[
        0x4e, 0x2a, 0x1f, 0x40, 0, 30, 0, 0, 0xcc, 8, 0, 0xc0, 0, 7, 0, 1,
    ]);
    req.extend_from_slice(&[0xa5; 14]);
    let mut other = req.clone();
    other[30..34].copy_from_slice(&[192, 168, 1, 1]);
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let trace = dir.join("in.hex");
    std::fs::write(
        &trace,
        format!("# two frames\n{}\n4: {}\n", hex(&req), hex(&other)),
    )
    .unwrap();
    let run = |args: &[&std::path::Path]| {
        let p4 = concat!(env!("CARGO_MANIFEST_DIR"), "/../../p4/jbsq.p4");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_p4sim"))
            .args(["run", p4, "--entries"])
            .arg(&entries)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let stdout = run(&["--hex-in".as_ref(), &trace]);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with("2 020000000102"),
        "REQ0 to 10.0.0.2 on port 2: {}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("30 020000000200"),
        "routed on port 30: {}",
        lines[1]
    );
    // The same two frames from a pcap file: the pcap out holds what left.
    let pin = dir.join("in.pcap");
    {
        let mut w = pcap_file::pcap::PcapWriter::new(std::fs::File::create(&pin).unwrap()).unwrap();
        for f in [&req, &other] {
            w.write_packet(&pcap_file::pcap::PcapPacket::new(
                std::time::Duration::ZERO,
                f.len() as u32,
                f,
            ))
            .unwrap();
        }
    }
    let pout = dir.join("out.pcap");
    run(&["--pcap-in".as_ref(), &pin, "--pcap-out".as_ref(), &pout]);
    let mut r = pcap_file::pcap::PcapReader::new(std::fs::File::open(&pout).unwrap()).unwrap();
    let mut got = vec![];
    while let Some(p) = r.next_packet() {
        got.push(p.unwrap().data.to_vec());
    }
    assert_eq!(got.len(), 2);
    assert_eq!(hex(&got[0]), lines[0].split_once(' ').unwrap().1);
    // A bad program is one line on stderr and a failure.
    let bad = dir.join("bad.p4");
    std::fs::write(&bad, "header h { bit<8> a }").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_p4sim"))
        .args(["check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.p4:1:"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The ones' complement sum of 16-bit words (0xffff for a valid IPv4 header).
fn csum(b: &[u8]) -> u16 {
    let mut s: u32 = b
        .chunks(2)
        .map(|c| u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0)))
        .sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The switch around the router, with hosts on ports 1 (client), 2 and 9 (the servers): ARP
/// for the router answered by the program, broadcasts flooded to every other host port,
/// known MACs bridged untouched, IPv4 to the router's MAC routed with TTL and checksum fixed.
#[test]
fn hosts_get_arp_bridging_flooding_and_routes() {
    let client = Host {
        ip: Ipv4Addr::new(10, 0, 1, 1),
        mac: [2, 0, 0, 0, 3, 1],
        port: 1,
    };
    let mut c = cfg();
    c.hosts = vec![client];
    c.hosts.extend(c.servers.iter().map(|s| Host {
        ip: *s.addr.ip(),
        mac: s.mac,
        port: s.egress_port,
    }));
    let mut sw = jbsq::switch(&c, 0).unwrap();
    // ARP who-has 10.0.0.254 (the router) from the client.
    let arp = frames::arp_request(client.mac, client.ip, Ipv4Addr::new(10, 0, 0, 254));
    let out = sw.run(1, &arp, 0, 10).unwrap();
    assert_eq!(out.len(), 1, "{out:?}");
    let (port, r) = &out[0];
    assert_eq!(*port, 1, "answered out of the port it came in on");
    assert_eq!(&r[0..6], &client.mac);
    assert_eq!(&r[6..12], &c.router_mac);
    assert_eq!(&r[20..22], &[0, 2], "a reply");
    assert_eq!(&r[22..28], &c.router_mac, "sender = the router");
    assert_eq!(&r[28..32], &[10, 0, 0, 254]);
    assert_eq!(&r[32..38], &client.mac);
    assert_eq!(&r[38..42], &client.ip.octets());
    // ARP for a host's address: flooded to the other hosts, not back to port 1.
    let mut who = arp.clone();
    who[38..42].copy_from_slice(&[10, 0, 0, 9]);
    let mut ports: Vec<u16> = sw
        .run(1, &who, 0, 10)
        .unwrap()
        .iter()
        .map(|o| o.0)
        .collect();
    ports.sort();
    assert_eq!(ports, [2, 9]);
    // The host's answer is unicast to the client's MAC: bridged to port 1 unchanged.
    let mut reply = who.clone();
    reply[0..6].copy_from_slice(&client.mac);
    reply[6..12].copy_from_slice(&[2, 0, 0, 0, 1, 9]);
    reply[21] = 2;
    assert_eq!(sw.run(9, &reply, 0, 10).unwrap(), [(1, reply.clone())]);
    // An unknown unicast MAC is flooded too.
    let mut stray = reply.clone();
    stray[0..6].copy_from_slice(&[2, 9, 9, 9, 9, 9]);
    assert_eq!(sw.run(9, &stray, 0, 10).unwrap().len(), 2);
    // IPv4 (ICMP) to the router's MAC for the client's address: routed with TTL - 1 and
    // a valid header checksum.
    let mut ip = c.router_mac.to_vec();
    ip.extend_from_slice(&[2, 0, 0, 0, 1, 2, 0x08, 0]);
    let mut hdr = vec![
        0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0, 10, 0, 0, 2, 10, 0, 1, 1,
    ];
    let sum = !csum(&hdr);
    hdr[10..12].copy_from_slice(&sum.to_be_bytes());
    ip.extend_from_slice(&hdr);
    ip.extend_from_slice(&[8, 0, 0xf7, 0xff, 0, 0, 0, 0]);
    let out = sw.run(2, &ip, 0, 10).unwrap();
    assert_eq!(out.len(), 1, "{out:?}");
    let (port, f) = &out[0];
    assert_eq!(*port, 1);
    assert_eq!(&f[0..6], &client.mac);
    assert_eq!(&f[6..12], &c.router_mac);
    assert_eq!(f[22], 63, "TTL decremented");
    assert_eq!(csum(&f[14..34]), 0xffff, "IPv4 checksum still valid");
    // The same frame to the client's own MAC is bridged, not routed: TTL kept.
    let mut bridged = ip.clone();
    bridged[0..6].copy_from_slice(&client.mac);
    assert_eq!(sw.run(2, &bridged, 0, 10).unwrap(), [(1, bridged.clone())]);
}

fn agg_cfg(n: usize) -> p4sim::control::aggregator::AggConfig {
    use p4sim::control::aggregator::{AggConfig, Member};
    AggConfig {
        addr: "10.0.2.254:7000".parse().unwrap(),
        mac: [2, 0, 0, 0, 2, 0xfe],
        members: (0..n)
            .map(|i| Member {
                addr: SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 1 + i as u8), 7000),
                mac: [2, 0, 0, 0, 3, i as u8],
                egress_port: 1 + i as u16,
            })
            .collect(),
        group: 4,
    }
}

/// The aggregator's control plane: JSON round trip, the member tables and the multicast
/// group in member order, P4Runtime text with the program's ids, refused configurations.
#[test]
fn aggregator_control_file() {
    use p4sim::control::aggregator;
    let cf = agg_cfg(3).control_file().unwrap();
    assert_eq!(ControlFile::from_json(&cf.to_json()).unwrap(), cf);
    let sw = aggregator::switch(&agg_cfg(3), 0).unwrap();
    assert_eq!(sw.rt.mcast.get(&4), Some(&vec![(1, 0), (2, 1), (3, 2)]));
    let text = cf.p4runtime_text(&sw.prog, 1).unwrap();
    assert!(
        text.contains("table_id: 33554434  # AggIngress.members"),
        "{text}"
    );
    assert!(text.contains("table_id: 33554435  # AggEgress.replicas"));
    assert!(text.contains("action_id: 16777227  # AggEgress.set_replica"));
    assert!(text.contains("multicast_group_id: 4"));
    assert!(text.contains("replicas { egress_port: 3 instance: 2 }"));
    // config default, 3 members x 2 tables, one group.
    assert_eq!(text.matches("updates {").count(), 1 + 3 * 2 + 1);
    assert!(agg_cfg(0).control_file().is_err());
    assert!(agg_cfg(10).control_file().is_err());
    assert!(agg_cfg(9).control_file().is_ok());
    let mut c = agg_cfg(3);
    c.group = 0;
    assert!(c.control_file().is_err());
}

/// The command runs aggregator.p4 from its control file: a probe is answered to the prober,
/// an AGG_AE_REQ is multicast to the two followers.
#[test]
fn the_command_runs_the_aggregator() {
    use ferrix_net::MacAddr;
    use ferrix_net::stack::{UDP_PAYLOAD_OFFSET, write_udp_frame};
    use ferrix_raft::{Message, wire};
    let dir = std::env::temp_dir().join(format!("p4sim-agg-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let entries = dir.join("agg.json");
    std::fs::write(&entries, agg_cfg(3).control_file().unwrap().to_json()).unwrap();
    let frame = |m: &Message| {
        let mut d = vec![0xcc, 8, 0x51, 0xc0, 0, 0, 0, 1];
        wire::encode(0, m, &mut d);
        let mut f = vec![0u8; UDP_PAYLOAD_OFFSET + d.len()];
        assert!(write_udp_frame(
            &mut f,
            MacAddr([2, 0, 0, 0, 2, 0xfe]),
            MacAddr([2, 0, 0, 0, 3, 0]),
            Ipv4Addr::new(10, 0, 2, 1),
            Ipv4Addr::new(10, 0, 2, 254),
            1,
            7000,
            7000,
            &d,
        ));
        f.iter().map(|x| format!("{x:02x}")).collect::<String>()
    };
    let ae = Message::AggAppendReq {
        term: 2,
        prev_index: 0,
        prev_term: 0,
        commit: 0,
        term_start: 1,
        entries: vec![],
    };
    let trace = dir.join("in.hex");
    std::fs::write(
        &trace,
        format!(
            "{}\n{}\n",
            frame(&Message::AggProbeReq { term: 2 }),
            frame(&ae)
        ),
    )
    .unwrap();
    let p4 = concat!(env!("CARGO_MANIFEST_DIR"), "/../../p4/aggregator.p4");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_p4sim"))
        .args(["run", p4, "--entries"])
        .arg(&entries)
        .arg("--hex-in")
        .arg(&trace)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    // The probe's answer: to member 0 (port 1), type 14 from 0xff, term 2.
    assert!(lines[0].starts_with("1 020000000300"), "{}", lines[0]);
    assert!(lines[0].ends_with("0eff0000000000000002"), "{}", lines[0]);
    assert!(lines[1].starts_with("2 020000000301") && lines[2].starts_with("3 020000000302"));
    let _ = std::fs::remove_dir_all(&dir);
}
