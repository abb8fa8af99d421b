//! The Wireshark R2P2 dissector (`tools/wireshark/r2p2.lua`) read back by tshark: a capture of
//! R2P2 traffic made by ferrix-net's own client, server and packetizer (single- and
//! multi-packet exchanges with FEEDBACK to a router, heartbeat, DROP, SACK, a reply out of
//! order with a duplicate, a request with a lost packet, a non-standard port for the
//! heuristic, a larger header size, malformed packets), and every decoded field checked
//! against what the encoder wrote. Skipped (reason printed) without tshark, unless `CI` is set.

use ferrix_net::MacAddr;
use ferrix_net::corpus::FixedClock;
use ferrix_net::r2p2::header::{FLAG_FIRST, FLAG_LAST, MAGIC};
use ferrix_net::r2p2::message::Packetizer;
use ferrix_net::r2p2::server::feedback_body;
use ferrix_net::r2p2::{
    Client, ClientConfig, Header, MsgType, Policy, RequestMeta, SendFailed, Server, ServerConfig,
    Transport, sack,
};
use ferrix_net::stack::{UDP_PAYLOAD_OFFSET, write_udp_frame};
use ferrix_tests::tshark;
use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

const CLIENT: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 40000);
const SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 8000);
const ROUTER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 3), 9000);
/// A port the dissector is not registered on: only the heuristic finds R2P2 there.
const ODD_PORT: u16 = 12345;
/// The JBSQ bound the server announces.
const JBSQ_N: u32 = 4;

/// Datagrams sent, each with its destination, in order.
type Sent = Vec<(SocketAddrV4, Vec<u8>)>;

/// What an endpoint sent (shared with the test, which takes it out).
#[derive(Clone, Default)]
struct Wire(Rc<RefCell<Sent>>);

impl Transport for Wire {
    fn send(&mut self, dst: SocketAddrV4, parts: &[&[u8]]) -> Result<(), SendFailed> {
        self.0.borrow_mut().push((dst, parts.concat()));
        Ok(())
    }
}

impl Wire {
    fn take(&self) -> Sent {
        std::mem::take(&mut *self.0.borrow_mut())
    }
}

/// The frames of the capture, each with the UDP payload it carries.
#[derive(Default)]
struct Capture {
    frames: Vec<Vec<u8>>,
    payloads: Vec<Vec<u8>>,
    /// Frame number -> bytes captured of it, for frames the snap length cut.
    snap: HashMap<usize, usize>,
}

impl Capture {
    /// Appends an Ethernet/IPv4/UDP frame `src` -> `dst` carrying `dgram`; its frame number.
    fn push(&mut self, src: SocketAddrV4, dst: SocketAddrV4, dgram: &[u8]) -> usize {
        let mac = |a: SocketAddrV4| {
            let [a, b, c, d] = a.ip().octets();
            MacAddr([2, 0, a, b, c, d])
        };
        let mut f = vec![0u8; UDP_PAYLOAD_OFFSET + dgram.len()];
        let ident = self.frames.len() as u16;
        assert!(write_udp_frame(
            &mut f,
            mac(dst),
            mac(src),
            *src.ip(),
            *dst.ip(),
            ident,
            src.port(),
            dst.port(),
            dgram,
        ));
        self.frames.push(f);
        self.payloads.push(dgram.to_vec());
        self.frames.len()
    }

    fn write(&self, path: &Path) {
        let header = PcapHeader {
            datalink: DataLink::ETHERNET,
            ..Default::default()
        };
        let file = std::fs::File::create(path).expect("create pcap");
        let mut w = PcapWriter::with_header(file, header).expect("pcap header");
        for (i, f) in self.frames.iter().enumerate() {
            let ts = Duration::from_millis(i as u64);
            let captured = &f[..self.snap.get(&(i + 1)).copied().unwrap_or(f.len())];
            w.write_packet(&PcapPacket::new(ts, f.len() as u32, captured))
                .expect("write frame");
        }
    }
}

/// A client and a server (reporting to a router) whose datagrams go into the capture.
struct Net {
    cap: Capture,
    client: Client<Wire, FixedClock>,
    client_wire: Wire,
    server: Server<Wire, FixedClock>,
    server_wire: Wire,
}

impl Net {
    fn new() -> Net {
        let client_wire = Wire::default();
        let server_wire = Wire::default();
        let ccfg = ClientConfig {
            first_rid: 7,
            ..ClientConfig::default()
        };
        let scfg = ServerConfig {
            router: Some(ROUTER),
            jbsq_n: JBSQ_N,
            ..ServerConfig::default()
        };
        Net {
            cap: Capture::default(),
            client: Client::new(client_wire.clone(), FixedClock(0), ccfg),
            client_wire,
            server: Server::new(server_wire.clone(), FixedClock(0), scfg),
            server_wire,
        }
    }

    /// One RPC: `request` from the client, a reply of `reply_len` bytes from the server, every
    /// datagram of both captured; the frame numbers of the exchange.
    fn rpc(&mut self, request: &[u8], policy: Policy, reply_len: usize) -> Vec<usize> {
        self.client
            .send_request(SERVER, request, policy, 1_000_000_000, 0)
            .expect("request sent");
        let reply: Vec<u8> = (0..reply_len).map(|i| (i % 251) as u8).collect();
        let mut frames = Vec::new();
        loop {
            let from_client = self.client_wire.take();
            let from_server = self.server_wire.take();
            if from_client.is_empty() && from_server.is_empty() {
                return frames;
            }
            for (dst, d) in from_client {
                frames.push(self.cap.push(CLIENT, dst, &d));
                if let Some(req) = self.server.handle_datagram(CLIENT, &d) {
                    let meta = req.meta;
                    self.server.send_response(&meta, &reply).expect("reply");
                }
            }
            for (dst, d) in from_server {
                frames.push(self.cap.push(SERVER, dst, &d));
                if dst == CLIENT {
                    self.client.handle_datagram(SERVER, &d);
                }
            }
        }
    }

    /// Captures what the server sent since the last call; the frame numbers.
    fn flush_server(&mut self) -> Vec<usize> {
        let sent = self.server_wire.take();
        sent.into_iter()
            .map(|(dst, d)| self.cap.push(SERVER, dst, &d))
            .collect()
    }

    /// Captures packets `order` of a message of `len` bytes, `src` -> `dst`.
    fn packets(
        &mut self,
        (src, dst): (SocketAddrV4, SocketAddrV4),
        msg_type: MsgType,
        rid: u16,
        len: usize,
        order: &[u16],
    ) -> Vec<usize> {
        let plan = Packetizer::new(msg_type, Policy::FixedRoute, rid, len, 1024).unwrap();
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        order
            .iter()
            .map(|&i| {
                let (h, r) = plan.packet(i).unwrap();
                self.cap
                    .push(src, dst, &[&h.encode()[..], &data[r]].concat())
            })
            .collect()
    }
}

/// One-packet R2P2 datagram.
fn single(t: MsgType, policy: Policy, rid: u16, body: &[u8]) -> Vec<u8> {
    [&Header::single(t, policy, rid).encode()[..], body].concat()
}

/// The tshark fields checked for every frame.
const FIELDS: &[&str] = &[
    "frame.number",
    "r2p2.type",
    "r2p2.policy",
    "r2p2.flags.first",
    "r2p2.flags.last",
    "r2p2.rid",
    "r2p2.p_order",
    "r2p2.packets",
    "r2p2.index",
    "r2p2.payload_len",
    "r2p2.feedback.rid",
    "r2p2.feedback.client_port",
    "r2p2.feedback.client_ip",
    "r2p2.feedback.n",
    "r2p2.feedback.served",
    "r2p2.feedback.heartbeat",
    "r2p2.reassembled.length",
    "r2p2.reassembled.count",
    "r2p2.reassembled_in",
    "r2p2.duplicate_of",
    "r2p2.sack.tail_from",
    "r2p2.sack.index",
    "r2p2.header_ext",
    "_ws.expert.message",
];

/// What tshark decoded: frame number -> field -> value ("" when absent).
fn decode(pcap: &Path) -> HashMap<usize, HashMap<&'static str, String>> {
    tshark::fields(pcap, "frame", FIELDS)
        .into_iter()
        .map(|row| {
            let m: HashMap<&str, String> = FIELDS.iter().copied().zip(row).collect();
            (m["frame.number"].parse().unwrap(), m)
        })
        .collect()
}

#[test]
fn tshark_decodes_what_ferrix_sends() {
    if !tshark::require() {
        return;
    }
    let mut net = Net::new();
    // The spec's golden request (rid 7, `1234`) and its reply, then its FEEDBACK.
    let golden = net.rpc(b"1234", Policy::LbRoute, 4);
    let [req, rsp, fb] = golden[..] else {
        panic!("golden exchange: {golden:?}")
    };
    assert_eq!(
        net.cap.payloads[0],
        b"\xcc\x08\x00\xc0\x00\x07\x00\x01\x31\x32\x33\x34"
    );
    // A 3-packet request (REQ0, ACK, REQ1, REQ2) and a 3-packet reply, then FEEDBACK.
    let multi = net.rpc(&[0x5a; 2000], Policy::LbRoute, 4000);
    let read_only = net.rpc(b"ro", Policy::ReplicatedRouteNoSe, 2);
    assert!(net.server.heartbeat());
    let heartbeat = net.flush_server();
    let drop_meta = RequestMeta {
        client: CLIENT,
        rid: 10,
        policy: Policy::LbRoute,
    };
    net.server.drop_request(&drop_meta);
    let dropped = net.flush_server();
    // A reply out of order (2, 0, 1) and a copy of packet 1; a request that loses packet 1.
    let to_client = (SERVER, CLIENT);
    let unordered = net.packets(to_client, MsgType::Response, 11, 3000, &[2, 0, 1, 1]);
    let lossy = net.packets((CLIENT, SERVER), MsgType::Request, 12, 3000, &[0, 2]);
    // A reference FEEDBACK (no extension fields) and a SACK asking for packet 1.
    let reference_body = &feedback_body(&drop_meta, 0, 0)[..8];
    let reference_pkt = single(MsgType::Feedback, Policy::LbRoute, 10, reference_body);
    let reference_fb = net.cap.push(SERVER, ROUTER, &reference_pkt);
    let sack_body = sack::encode(None, [1u16].into_iter());
    let sack_pkt = single(MsgType::Sack, Policy::FixedRoute, 12, &sack_body);
    let sack_frame = net.cap.push(SERVER, CLIENT, &sack_pkt);
    // The heuristic: R2P2 on a port nobody registered, and plain UDP next to it.
    let odd = SocketAddrV4::new(*SERVER.ip(), ODD_PORT);
    let heuristic = net.cap.push(
        CLIENT,
        odd,
        &single(MsgType::Request, Policy::LbRoute, 13, b"x"),
    );
    let not_r2p2 = net.cap.push(CLIENT, odd, b"hello, not r2p2");
    // A header size of 12 (a receiver must honour it): 4 header bytes, then 2 of payload.
    let mut long_header = single(MsgType::Request, Policy::LbRoute, 14, &[1, 2, 3, 4, 9, 9]);
    long_header[1] = 12;
    let long_header = net.cap.push(CLIENT, SERVER, &long_header);
    // Malformed, on the R2P2 port.
    let mut bad_magic = single(MsgType::Request, Policy::LbRoute, 15, b"x");
    bad_magic[0] = MAGIC ^ 1;
    let mut small_header = single(MsgType::Request, Policy::LbRoute, 16, b"x");
    small_header[1] = 4;
    let mut big_header = single(MsgType::Request, Policy::LbRoute, 17, b"xyz");
    big_header[1] = 40;
    let malformed: Vec<usize> = [
        vec![MAGIC, 8, 0, FLAG_FIRST | FLAG_LAST, 0],
        bad_magic,
        small_header,
        big_header,
        single(MsgType::Feedback, Policy::LbRoute, 18, &[0, 18, 0x9c]),
        single(MsgType::Sack, Policy::FixedRoute, 19, &[0xff, 0xff, 0]),
    ]
    .iter()
    .map(|d| net.cap.push(CLIENT, SERVER, d))
    .collect();
    let mut type9 = single(MsgType::Request, Policy::LbRoute, 20, b"x");
    type9[2] = 0x90;
    let unknown_type = net.cap.push(CLIENT, SERVER, &type9);
    // A FEEDBACK the capture's snap length cut after the R2P2 header: not malformed.
    let cut_fb = net
        .cap
        .push(SERVER, ROUTER, &net.cap.payloads[fb - 1].clone());
    net.cap.snap.insert(cut_fb, UDP_PAYLOAD_OFFSET + 8);

    let pcap = std::env::temp_dir().join(format!("ferrix-dissector-{}.pcap", std::process::id()));
    net.cap.write(&pcap);
    let got = decode(&pcap);
    let _ = std::fs::remove_file(&pcap);
    let field = |frame: usize, name: &str| -> &str {
        got.get(&frame)
            .unwrap_or_else(|| panic!("frame {frame} not decoded"))[name]
            .as_str()
    };

    // Every well-formed packet: the header fields are what ferrix-net's parser reads.
    let malformed_or_foreign = [&malformed[..], &[not_r2p2, unknown_type]].concat();
    for (i, d) in net.cap.payloads.iter().enumerate() {
        let n = i + 1;
        if malformed_or_foreign.contains(&n) {
            continue;
        }
        let (h, payload) = Header::parse(d).unwrap_or_else(|e| panic!("frame {n}: {e:?}"));
        let flag = |b: u8| if h.flags & b != 0 { "1" } else { "0" };
        let want = [
            ("r2p2.type", (h.msg_type as u8).to_string()),
            ("r2p2.policy", (h.policy as u8).to_string()),
            ("r2p2.flags.first", flag(FLAG_FIRST).into()),
            ("r2p2.flags.last", flag(FLAG_LAST).into()),
            ("r2p2.rid", h.rid.to_string()),
            ("r2p2.p_order", h.p_order.to_string()),
            ("r2p2.payload_len", payload.len().to_string()),
            (
                "r2p2.index",
                if h.is_first() { 0 } else { h.p_order }.to_string(),
            ),
        ];
        for (name, value) in want {
            assert_eq!(field(n, name), value, "frame {n} {name}");
        }
        assert_eq!(
            field(n, "r2p2.packets"),
            if h.is_first() {
                h.p_order.to_string()
            } else {
                String::new()
            },
            "frame {n}"
        );
        assert!(
            !field(n, "_ws.expert.message").contains("Malformed"),
            "frame {n}: {}",
            field(n, "_ws.expert.message")
        );
    }

    let [req0, ack, req1, req2, rsp0, rsp1, rsp2, fb2] = multi[..] else {
        panic!("multi-packet exchange: {multi:?}")
    };
    let [u2, u0, u1, copy] = unordered[..] else {
        panic!("out-of-order reply: {unordered:?}")
    };
    let fb_fields = [
        "r2p2.feedback.rid",
        "r2p2.feedback.client_port",
        "r2p2.feedback.client_ip",
        "r2p2.feedback.n",
        "r2p2.feedback.served",
        "r2p2.feedback.heartbeat",
    ];
    let feedback = |n: usize, values: [&str; 6]| -> Vec<(usize, &str, String)> {
        fb_fields
            .iter()
            .zip(values)
            .map(|(&f, v)| (n, f, v.to_string()))
            .collect()
    };
    let (u1s, req2s, rsp2s) = (u1.to_string(), req2.to_string(), rsp2.to_string());
    let mut want: Vec<(usize, &str, String)> = [
        // The golden exchange: REQUEST F|L rid 7, RESPONSE (FIXED_ROUTE), FEEDBACK.
        (req, "r2p2.type", "0"),
        (req, "r2p2.rid", "7"),
        (rsp, "r2p2.type", "1"),
        (rsp, "r2p2.policy", "1"),
        (fb, "r2p2.type", "2"),
        // Multi-packet: REQ0 (3 packets, 14 bytes), ACK, REQ1, REQ2 (reassembled: 2000
        // bytes), then the reply's 3 packets (4000 bytes) and FEEDBACK.
        (req0, "r2p2.packets", "3"),
        (req0, "r2p2.payload_len", "14"),
        (req0, "r2p2.reassembled_in", &req2s),
        (req0, "r2p2.reassembled.length", ""),
        (ack, "r2p2.type", "3"),
        (ack, "r2p2.policy", "1"),
        (ack, "r2p2.reassembled_in", ""),
        (req1, "r2p2.index", "1"),
        (req1, "r2p2.reassembled_in", &req2s),
        (req2, "r2p2.flags.last", "1"),
        (req2, "r2p2.reassembled.length", "2000"),
        (req2, "r2p2.reassembled.count", "3"),
        (rsp0, "r2p2.reassembled_in", &rsp2s),
        (rsp1, "r2p2.reassembled_in", &rsp2s),
        (rsp2, "r2p2.reassembled.length", "4000"),
        (read_only[0], "r2p2.policy", "3"),
        (dropped[0], "r2p2.type", "4"),
        (dropped[0], "r2p2.rid", "10"),
        // Out of order: complete with the third frame, whatever the order; the copy is
        // flagged.
        (u1, "r2p2.reassembled.length", "3000"),
        (u2, "r2p2.reassembled_in", &u1s),
        (u0, "r2p2.reassembled_in", &u1s),
        (copy, "r2p2.duplicate_of", &u1s),
        (copy, "_ws.expert.message", "Packet already received"),
        (sack_frame, "r2p2.type", "8"),
        (sack_frame, "r2p2.sack.tail_from", "65535"),
        (sack_frame, "r2p2.sack.index", "1"),
        // The heuristic, on a port the dissector is not registered on.
        (heuristic, "r2p2.type", "0"),
        (heuristic, "r2p2.rid", "13"),
        (not_r2p2, "r2p2.type", ""),
        (long_header, "r2p2.header_ext", "01020304"),
        (long_header, "r2p2.payload_len", "2"),
        (
            unknown_type,
            "_ws.expert.message",
            "Unassigned message type",
        ),
        (cut_fb, "r2p2.type", "2"),
        (cut_fb, "r2p2.feedback.rid", ""),
        (cut_fb, "_ws.expert.message", ""),
    ]
    .map(|(n, f, v)| (n, f, v.to_string()))
    .into();
    // FEEDBACK: the extension's bound and served count; a heartbeat names no request; a
    // reference FEEDBACK has no extension fields.
    want.extend(feedback(fb, ["7", "40000", "10.0.0.1", "4", "1", "0"]));
    want.extend(feedback(fb2, ["8", "40000", "10.0.0.1", "4", "2", "0"]));
    want.extend(feedback(heartbeat[0], ["0", "0", "0.0.0.0", "4", "3", "1"]));
    want.extend(feedback(
        reference_fb,
        ["10", "40000", "10.0.0.1", "", "", "0"],
    ));
    // A lost packet: never reassembled, and no complaint.
    for &n in &lossy {
        for f in [
            "r2p2.reassembled.length",
            "r2p2.reassembled_in",
            "_ws.expert.message",
        ] {
            want.push((n, f, String::new()));
        }
    }
    for (n, name, value) in &want {
        assert_eq!(field(*n, name), value, "frame {n} {name}");
    }
    for n in malformed {
        assert!(
            field(n, "_ws.expert.message").contains("Malformed R2P2 packet"),
            "frame {n} not flagged: {:?}",
            got[&n]
        );
    }
}
