/* sven.p4: SVEN, SLO-aware RPC admission control (thesis chapter 11), in front of the JBSQ
 * router of jbsq.p4, v1model.
 *
 * The same decisions as apps/router/logic (crate ferrix-router) with Balance::Jbsq(n) and
 * `sven: Some(..)` (ferrix_router::sven), for REQ0 and FEEDBACK:
 * - data plane (this program): a REQ0 of class c (its policy nibble) is refused with
 *   probability drop_rate[c]: the drop_thr register holds ceil(drop_rate * 2^53) and a
 *   53-bit `random` draw below it refuses, which is ferrix_router::rng::Rng::chance's rule;
 *   the client gets the router's DROP message (wire::drop_message) from the router's address.
 *   An admitted REQ0 is timestamped in a two-way hash table keyed by (client IP, client
 *   port, rid) (the thesis's choice); the FEEDBACK naming it closes the measurement: the
 *   latency selects, by a range-matched table, the class's histogram counter (buckets of
 *   SLO/16, the last open) and the under- or over-SLO counter. The JBSQ part is jbsq.p4's.
 * - control plane (tools/p4sim/src/control/sven.rs): every period it reads the under/over
 *   counters, runs listing 11.1 (EWMA, additive increase/decrease, cap, classes never
 *   dropped) and writes drop_thr.
 * p4/README.md says where this and ferrix-router differ and why.
 */
#include <core.p4>
#include <v1model.p4>

const bit<16> ETHERTYPE_IPV4 = 0x0800;
const bit<8>  IPPROTO_UDP = 17;
const bit<8>  R2P2_MAGIC = 0xcc;
const bit<4>  TYPE_REQUEST = 0;
const bit<4>  TYPE_FEEDBACK = 2;
const bit<8>  FLAG_FIRST = 0x80;
const bit<32> MAX_SERVERS = 64;
/* Servers compared in one pass. */
const bit<8>  GROUP = 4;
const bit<32> MAX_BOUND = 1024;
const bit<32> INSTANCE_RECIRC = 4;

/* Indices of the `stats` counter (the names of ferrix_router::RouterStats). */
const bit<32> C_RX = 0;
const bit<32> C_REQ0 = 1;
const bit<32> C_FEEDBACK = 2;
const bit<32> C_HEARTBEATS = 3;
const bit<32> C_FORWARDED = 4;
const bit<32> C_MALFORMED = 5;
const bit<32> C_MALFORMED_FEEDBACK = 6;
const bit<32> C_NOT_REQ0 = 7;
const bit<32> C_UNEXPECTED_TYPE = 8;
const bit<32> C_POLICY_FALLBACK = 9;
const bit<32> C_FEEDBACK_UNKNOWN = 10;
const bit<32> C_RECIRCULATED = 11;
const bit<32> C_PARKED_SWEEPS = 12;
const bit<32> C_NOT_ROUTER = 13;
const bit<32> C_NO_SERVER = 14;
/* SVEN. */
const bit<32> C_REFUSED_SVEN = 15;
const bit<32> C_SVEN_MATCHED = 16;
const bit<32> C_FEEDBACK_UNMATCHED = 17;
const bit<32> C_TS_EVICTED = 18;

const bit<8>  CLASSES = 16;
const bit<32> BUCKETS = 64;
/* Slots per way of the timestamp table. */
const bit<32> TS_SLOTS = 65536;
const bit<4>  TYPE_DROP = 4;
const bit<4>  POLICY_FIXED = 1;

header ethernet_t {
    bit<48> dstAddr;
    bit<48> srcAddr;
    bit<16> etherType;
}

header ipv4_t {
    bit<4>  version;
    bit<4>  ihl;
    bit<8>  diffserv;
    bit<16> totalLen;
    bit<16> identification;
    bit<3>  flags;
    bit<13> fragOffset;
    bit<8>  ttl;
    bit<8>  protocol;
    bit<16> hdrChecksum;
    bit<32> srcAddr;
    bit<32> dstAddr;
}

header udp_t {
    bit<16> srcPort;
    bit<16> dstPort;
    bit<16> length;
    bit<16> checksum;
}

/* shared/spec/r2p2.md: the 8-byte header at the start of every UDP payload. */
header r2p2_t {
    bit<8>  magic;
    bit<8>  header_size;
    bit<4>  msg_type;
    bit<4>  policy;
    bit<8>  flags;
    bit<16> rid;
    bit<16> p_order;
}

/* The DROP message's body (ferrix_router::wire::drop_message): "DROP". */
header drop_msg_t {
    bit<32> text;
}

/* Header bytes beyond the 8 (header_size > 8), skipped before a FEEDBACK body. */
header pad_t {
    bit<8> b;
}

/* FEEDBACK body, reference part: the request it completes. */
header feedback_t {
    bit<16> rid;
    bit<16> client_port;
    bit<32> client_ip;
}

/* The served-count extension (ferrix_net::r2p2::server::feedback_body). */
header feedback_ext_t {
    bit<32> n;
    bit<64> served;
}

struct headers_t {
    ethernet_t     eth;
    ipv4_t         ipv4;
    udp_t          udp;
    r2p2_t         r2p2;
    drop_msg_t     drop_msg;
    pad_t[32]      pad;
    feedback_t     fb;
    feedback_ext_t fb_ext;
}

/* What a REQ0 carries through recirculation (field list 0). */
struct search_t {
    @field_list(0) bit<16> round;
    @field_list(0) bit<8>  window;
    @field_list(0) bit<8>  start;
    @field_list(0) bit<1>  eligible;
    @field_list(0) bit<1>  fixed;
    @field_list(0) bit<1>  parked;
}

struct metadata_t {
    search_t s;
    bit<1>   recirc;
    bit<8>   pad_left;
    bit<16>  body_len;
    /* From the config table. */
    bit<8>   k;
    bit<8>   windows;
    bit<9>   recirc_port;
    bit<48>  router_mac;
    /* The chosen server and its address. */
    bit<8>   chosen;
    bit<32>  dst_ip;
    bit<16>  dst_port;
    bit<48>  dst_mac;
    bit<9>   dst_egress;
    bit<8>   fb_index;
    /* SVEN. */
    bit<4>   class;
    bit<1>   fallback;
    bit<1>   refused;
    bit<48>  latency;
}

parser RouterParser(packet_in pkt, out headers_t hdr, inout metadata_t meta,
                    inout standard_metadata_t standard_metadata) {
    state start {
        pkt.extract(hdr.eth);
        transition select(hdr.eth.etherType) {
            ETHERTYPE_IPV4: parse_ipv4;
            default: accept;
        }
    }
    /* The frames ferrix_net::forward::retarget_udp rewrites: IPv4 without options,
     * UDP, not a fragment (MF clear, offset 0). */
    state parse_ipv4 {
        pkt.extract(hdr.ipv4);
        transition select(hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.protocol,
                          hdr.ipv4.flags[0:0], hdr.ipv4.fragOffset) {
            (4, 5, IPPROTO_UDP, 0, 0): parse_udp;
            default: accept;
        }
    }
    state parse_udp {
        pkt.extract(hdr.udp);
        pkt.extract(hdr.r2p2);
        transition select(hdr.r2p2.msg_type, hdr.r2p2.header_size) {
            (TYPE_FEEDBACK, 8 .. 255): parse_feedback_pad;
            default: accept;
        }
    }
    state parse_feedback_pad {
        meta.pad_left = hdr.r2p2.header_size - 8;
        meta.body_len = hdr.udp.length - 16w8 - (bit<16>)hdr.r2p2.header_size;
        transition pad_loop;
    }
    state pad_loop {
        transition select(meta.pad_left) {
            0: parse_feedback;
            default: pad_one;
        }
    }
    state pad_one {
        pkt.extract(hdr.pad.next);
        meta.pad_left = meta.pad_left - 1;
        transition pad_loop;
    }
    /* The body length comes from the UDP length, not the frame (Ethernet pads short
     * frames); ingress checks the UDP length against the frame. */
    state parse_feedback {
        transition select(meta.body_len) {
            0 .. 7: accept;
            8 .. 19: parse_feedback_ref;
            default: parse_feedback_ext;
        }
    }
    state parse_feedback_ref {
        pkt.extract(hdr.fb);
        transition accept;
    }
    state parse_feedback_ext {
        pkt.extract(hdr.fb);
        pkt.extract(hdr.fb_ext);
        transition accept;
    }
}

control RouterVerifyChecksum(inout headers_t hdr, inout metadata_t meta) {
    apply { }
}

control RouterIngress(inout headers_t hdr, inout metadata_t meta,
                      inout standard_metadata_t standard_metadata) {
    @id(1) register<bit<16>>(MAX_SERVERS) outstanding;
    @id(2) register<bit<16>>(MAX_SERVERS) bound;
    @id(3) register<bit<64>>(MAX_SERVERS) served_seen;
    @id(4) register<bit<1>>(MAX_SERVERS) served_valid;
    @id(5) register<bit<48>>(MAX_SERVERS) last_seen;
    /* The round-robin start of the next LB search. */
    @id(6) register<bit<8>>(1) cursor;
    @id(7) counter(32, CounterType.packets) stats;
    /* SVEN: per class, ceil(drop_rate * 2^53) (the control plane writes it). */
    @id(8) register<bit<64>>(16) drop_thr;
    /* Arrival timestamps of admitted REQ0s, two ways: key (client IP, port, rid), class + 1
     * (0: empty), ingress timestamp (us). */
    @id(9) register<bit<64>>(TS_SLOTS) key_a;
    @id(10) register<bit<5>>(TS_SLOTS) cls_a;
    @id(11) register<bit<48>>(TS_SLOTS) ts_a;
    @id(12) register<bit<64>>(TS_SLOTS) key_b;
    @id(13) register<bit<5>>(TS_SLOTS) cls_b;
    @id(14) register<bit<48>>(TS_SLOTS) ts_b;
    /* Per class: REQ0s admitted and refused, measurements under and over the SLO; the
     * histogram at class * BUCKETS + bucket. */
    @id(15) counter(16, CounterType.packets) admitted;
    @id(16) counter(16, CounterType.packets) refused;
    @id(17) counter(16, CounterType.packets) under;
    @id(18) counter(16, CounterType.packets) over;
    @id(19) counter(1024, CounterType.packets) histogram;

    @id(1) action drop() {
        mark_to_drop(standard_metadata);
    }
    @id(2) action set_config(bit<8> k, bit<8> windows, bit<9> recirc_port, bit<48> router_mac) {
        meta.k = k;
        meta.windows = windows;
        meta.recirc_port = recirc_port;
        meta.router_mac = router_mac;
    }
    /* Singleton: the server count, windows = ceil(k / GROUP), the recirculation port. */
    @id(1) table config {
        actions = { set_config; }
        default_action = set_config(0, 0, 0, 0);
    }

    @id(3) action to_router() { }
    /* The router's addresses (IP, UDP port) for REQ0 and FEEDBACK. */
    @id(2) table router_addr {
        key = {
            hdr.ipv4.dstAddr: exact;
            hdr.udp.dstPort: exact;
        }
        actions = { to_router; NoAction; }
        default_action = NoAction();
        size = 16;
    }

    @id(4) action set_nhop(bit<48> dmac, bit<9> port) {
        hdr.eth.srcAddr = hdr.eth.dstAddr;
        hdr.eth.dstAddr = dmac;
        hdr.ipv4.ttl = hdr.ipv4.ttl - 1;
        standard_metadata.egress_spec = port;
    }
    /* Everything else is routed (or dropped). */
    @id(3) table ipv4_lpm {
        key = { hdr.ipv4.dstAddr: lpm; }
        actions = { set_nhop; drop; }
        default_action = drop();
        size = 1024;
    }

    @id(5) action req0_lb() { }
    @id(6) action req0_fixed() { }
    @id(7) action req0_fallback() { }
    @id(8) action feedback() { }
    @id(9) action not_req0() { }
    @id(10) action unexpected_type() { }
    /* R2P2 type, flags and policy -> what the router does. */
    @id(4) table classify {
        key = {
            hdr.r2p2.msg_type: ternary;
            hdr.r2p2.flags: ternary;
            hdr.r2p2.policy: range;
        }
        actions = { req0_lb; req0_fixed; req0_fallback; feedback; not_req0; unexpected_type; }
        default_action = unexpected_type();
        size = 16;
    }

    @id(11) action set_server(bit<32> ip, bit<16> port, bit<48> mac, bit<9> egress) {
        meta.dst_ip = ip;
        meta.dst_port = port;
        meta.dst_mac = mac;
        meta.dst_egress = egress;
    }
    /* Server index -> where its REQ0s go. */
    @id(5) table server_addr {
        key = { meta.chosen: exact; }
        actions = { set_server; drop; }
        default_action = drop();
        size = 64;
    }

    @id(12) action set_index(bit<8> index) {
        meta.fb_index = index;
    }
    /* FEEDBACK source (IP, UDP port) -> server index. */
    @id(6) table server_index {
        key = {
            hdr.ipv4.srcAddr: exact;
            hdr.udp.srcPort: exact;
        }
        actions = { set_index; NoAction; }
        default_action = NoAction();
        size = 64;
    }

    @id(13) action record(bit<8> bucket, bit<1> late) {
        histogram.count((bit<32>)meta.class * BUCKETS + (bit<32>)bucket);
        if (late == 1) {
            over.count((bit<32>)meta.class);
        } else {
            under.count((bit<32>)meta.class);
        }
    }
    /* Latency (us) -> histogram bucket and under/over the SLO (the control plane splits the
     * bucket that holds the SLO at it). */
    @id(7) table latency_bucket {
        key = { meta.latency: range; }
        actions = { record; }
        default_action = record(63, 1);
        size = 80;
    }

    apply {
        meta.recirc = 0;
        meta.refused = 0;
        config.apply();
        bool search = false;
        if (standard_metadata.instance_type == INSTANCE_RECIRC) {
            search = true;
        } else {
            if (!hdr.udp.isValid()) {
                if (hdr.ipv4.isValid()) {
                    ipv4_lpm.apply();
                } else {
                    drop();
                }
                exit;
            }
            /* The datagram must lie inside the frame (ferrix-router's callers check this
             * before handing it over). */
            if (hdr.udp.length < 8 || (bit<32>)hdr.udp.length + 34 > standard_metadata.packet_length) {
                stats.count(C_NOT_ROUTER);
                drop();
                exit;
            }
            if (!router_addr.apply().hit) {
                ipv4_lpm.apply();
                exit;
            }
            stats.count(C_RX);
            bit<16> dlen = hdr.udp.length - 8;
            if (dlen < 8 || hdr.r2p2.magic != R2P2_MAGIC || hdr.r2p2.header_size < 8
                    || (bit<16>)hdr.r2p2.header_size > dlen) {
                stats.count(C_MALFORMED);
                drop();
                exit;
            }
            switch (classify.apply().action_run) {
                feedback: {
                    stats.count(C_FEEDBACK);
                    if (!hdr.fb.isValid()) {
                        stats.count(C_MALFORMED_FEEDBACK);
                        drop();
                        exit;
                    }
                    if (!server_index.apply().hit) {
                        stats.count(C_FEEDBACK_UNKNOWN);
                        drop();
                        exit;
                    }
                    bit<32> i = (bit<32>)meta.fb_index;
                    last_seen.write(i, standard_metadata.ingress_global_timestamp);
                    bool heartbeat = hdr.fb.client_ip == 0 && hdr.fb.client_port == 0;
                    bit<16> freed = heartbeat ? 16w0 : 16w1;
                    if (hdr.fb_ext.isValid()) {
                        bound.write(i, hdr.fb_ext.n > MAX_BOUND ? (bit<16>)MAX_BOUND : (bit<16>)hdr.fb_ext.n);
                        bit<1> valid;
                        bit<64> seen;
                        served_valid.read(valid, i);
                        served_seen.read(seen, i);
                        if (valid == 1) {
                            freed = 0;
                            if (hdr.fb_ext.served > seen) {
                                bit<64> d = hdr.fb_ext.served - seen;
                                freed = d > 0xffff ? 16w0xffff : (bit<16>)d;
                                served_seen.write(i, hdr.fb_ext.served);
                            }
                        } else {
                            served_valid.write(i, 1);
                            served_seen.write(i, hdr.fb_ext.served);
                        }
                    }
                    if (heartbeat) {
                        stats.count(C_HEARTBEATS);
                    }
                    bit<16> o;
                    outstanding.read(o, i);
                    outstanding.write(i, o |-| freed);
                    if (!heartbeat) {
                        /* SVEN: the REQ0 this FEEDBACK names closes its measurement. */
                        bit<64> key = hdr.fb.client_ip ++ hdr.fb.client_port ++ hdr.fb.rid;
                        bit<32> ia;
                        bit<32> ib;
                        hash(ia, HashAlgorithm.crc32, 32w0, { key }, TS_SLOTS);
                        hash(ib, HashAlgorithm.crc16, 32w0, { key }, TS_SLOTS);
                        bit<64> ka;
                        bit<64> kb;
                        bit<5> ca;
                        bit<5> cb;
                        bit<48> t0;
                        key_a.read(ka, ia);
                        cls_a.read(ca, ia);
                        key_b.read(kb, ib);
                        cls_b.read(cb, ib);
                        bool found = false;
                        if (ca != 0 && ka == key) {
                            ts_a.read(t0, ia);
                            cls_a.write(ia, 0);
                            meta.class = (bit<4>)(ca - 1);
                            found = true;
                        } else if (cb != 0 && kb == key) {
                            ts_b.read(t0, ib);
                            cls_b.write(ib, 0);
                            meta.class = (bit<4>)(cb - 1);
                            found = true;
                        }
                        if (found) {
                            meta.latency = standard_metadata.ingress_global_timestamp - t0;
                            latency_bucket.apply();
                            stats.count(C_SVEN_MATCHED);
                        } else {
                            stats.count(C_FEEDBACK_UNMATCHED);
                        }
                    }
                    drop();
                    exit;
                }
                req0_lb: { search = true; }
                req0_fixed: {
                    search = true;
                    meta.s.fixed = 1;
                }
                req0_fallback: {
                    search = true;
                    meta.fallback = 1;
                }
                not_req0: {
                    stats.count(C_NOT_REQ0);
                    drop();
                    exit;
                }
                unexpected_type: {
                    stats.count(C_UNEXPECTED_TYPE);
                    drop();
                    exit;
                }
            }
            stats.count(C_REQ0);
            /* SVEN admission (Sven::admit): a draw only when the class's rate is above 0. */
            meta.class = hdr.r2p2.policy;
            bit<64> thr;
            drop_thr.read(thr, (bit<32>)meta.class);
            bool refuse = false;
            if (thr != 0) {
                bit<64> r;
                random(r, 64w0, 64w0x1fffffffffffff);
                refuse = r < thr;
            }
            if (refuse) {
                refused.count((bit<32>)meta.class);
                stats.count(C_REFUSED_SVEN);
                /* DROP to the client, from the address it sent to (send_udp from the
                 * router's port): a fresh header as ferrix_net's write_udp_frame writes it. */
                meta.refused = 1;
                hdr.r2p2.magic = R2P2_MAGIC;
                hdr.r2p2.header_size = 8;
                hdr.r2p2.msg_type = TYPE_DROP;
                hdr.r2p2.policy = POLICY_FIXED;
                hdr.r2p2.flags = 0xc0;
                hdr.r2p2.p_order = 1;
                hdr.drop_msg.setValid();
                hdr.drop_msg.text = 0x44524f50;
                hdr.eth.dstAddr = hdr.eth.srcAddr;
                hdr.eth.srcAddr = meta.router_mac;
                bit<32> client_ip = hdr.ipv4.srcAddr;
                bit<16> client_port = hdr.udp.srcPort;
                hdr.ipv4.srcAddr = hdr.ipv4.dstAddr;
                hdr.ipv4.dstAddr = client_ip;
                hdr.ipv4.diffserv = 0;
                hdr.ipv4.totalLen = 40;
                hdr.ipv4.identification = 0;
                hdr.ipv4.flags = 2;
                hdr.ipv4.fragOffset = 0;
                hdr.ipv4.ttl = 64;
                hdr.udp.srcPort = hdr.udp.dstPort;
                hdr.udp.dstPort = client_port;
                hdr.udp.length = 20;
                bit<32> u = (bit<32>)hdr.ipv4.srcAddr[31:16] + (bit<32>)hdr.ipv4.srcAddr[15:0]
                    + (bit<32>)hdr.ipv4.dstAddr[31:16] + (bit<32>)hdr.ipv4.dstAddr[15:0]
                    + 17 + 20 + (bit<32>)hdr.udp.srcPort + (bit<32>)hdr.udp.dstPort + 20
                    + 0xcc08 + 0x41c0 + (bit<32>)hdr.r2p2.rid + 1 + 0x4452 + 0x4f50;
                u = (u & 0xffff) + (u >> 16);
                u = (u & 0xffff) + (u >> 16);
                bit<16> c = ~u[15:0];
                hdr.udp.checksum = c == 0 ? 16w0xffff : c;
                truncate(54);
                standard_metadata.egress_spec = standard_metadata.ingress_port;
                exit;
            }
            admitted.count((bit<32>)meta.class);
            if (meta.fallback == 1) {
                stats.count(C_POLICY_FALLBACK);
            }
            if (meta.k == 0) {
                stats.count(C_NO_SERVER);
                drop();
                exit;
            }
            /* SVEN: the arrival time, in the first free way (or the REQ0's own). */
            bit<64> key = hdr.ipv4.srcAddr ++ hdr.udp.srcPort ++ hdr.r2p2.rid;
            bit<32> ia;
            bit<32> ib;
            hash(ia, HashAlgorithm.crc32, 32w0, { key }, TS_SLOTS);
            hash(ib, HashAlgorithm.crc16, 32w0, { key }, TS_SLOTS);
            bit<64> ka;
            bit<64> kb;
            bit<5> ca;
            bit<5> cb;
            key_a.read(ka, ia);
            cls_a.read(ca, ia);
            key_b.read(kb, ib);
            cls_b.read(cb, ib);
            bit<5> tag = (bit<5>)meta.class + 1;
            if (ca == 0 || ka == key) {
                key_a.write(ia, key);
                cls_a.write(ia, tag);
                ts_a.write(ia, standard_metadata.ingress_global_timestamp);
            } else if (cb == 0 || kb == key) {
                key_b.write(ib, key);
                cls_b.write(ib, tag);
                ts_b.write(ib, standard_metadata.ingress_global_timestamp);
            } else {
                /* Both ways taken: the older measurement is lost. */
                stats.count(C_TS_EVICTED);
                key_a.write(ia, key);
                cls_a.write(ia, tag);
                ts_a.write(ia, standard_metadata.ingress_global_timestamp);
            }
            meta.s.round = 0;
            meta.s.window = 0;
            meta.s.eligible = 0;
            meta.s.parked = 0;
            meta.s.start = 0;
            if (meta.s.fixed == 0) {
                bit<8> c;
                cursor.read(c, 0);
                if (c >= meta.k) {
                    c = 0;
                }
                meta.s.start = c;
                cursor.write(0, c + 1 == meta.k ? 8w0 : c + 1);
            }
        }

        if (search) {
            /* One window: GROUP servers from start + window * GROUP (mod k). */
            bool found = false;
            bit<8> base = meta.s.window * GROUP;
            bit<8> idx;
            bit<16> o;
            bit<16> b;
            if (base < meta.k) {
                idx = meta.s.start + base;
                idx = idx >= meta.k ? idx - meta.k : idx;
                outstanding.read(o, (bit<32>)idx);
                bound.read(b, (bit<32>)idx);
                if (meta.s.fixed == 1) {
                    if (b > 0) { found = true; meta.chosen = idx; }
                } else if (o < b) {
                    meta.s.eligible = 1;
                    if (o <= meta.s.round) { found = true; meta.chosen = idx; }
                }
            }
            if (!found && base + 1 < meta.k) {
                idx = meta.s.start + base + 1;
                idx = idx >= meta.k ? idx - meta.k : idx;
                outstanding.read(o, (bit<32>)idx);
                bound.read(b, (bit<32>)idx);
                if (meta.s.fixed == 1) {
                    if (b > 0) { found = true; meta.chosen = idx; }
                } else if (o < b) {
                    meta.s.eligible = 1;
                    if (o <= meta.s.round) { found = true; meta.chosen = idx; }
                }
            }
            if (!found && base + 2 < meta.k) {
                idx = meta.s.start + base + 2;
                idx = idx >= meta.k ? idx - meta.k : idx;
                outstanding.read(o, (bit<32>)idx);
                bound.read(b, (bit<32>)idx);
                if (meta.s.fixed == 1) {
                    if (b > 0) { found = true; meta.chosen = idx; }
                } else if (o < b) {
                    meta.s.eligible = 1;
                    if (o <= meta.s.round) { found = true; meta.chosen = idx; }
                }
            }
            if (!found && base + 3 < meta.k) {
                idx = meta.s.start + base + 3;
                idx = idx >= meta.k ? idx - meta.k : idx;
                outstanding.read(o, (bit<32>)idx);
                bound.read(b, (bit<32>)idx);
                if (meta.s.fixed == 1) {
                    if (b > 0) { found = true; meta.chosen = idx; }
                } else if (o < b) {
                    meta.s.eligible = 1;
                    if (o <= meta.s.round) { found = true; meta.chosen = idx; }
                }
            }

            if (found) {
                outstanding.read(o, (bit<32>)meta.chosen);
                outstanding.write((bit<32>)meta.chosen, o + 1);
                server_addr.apply();
                stats.count(C_FORWARDED);
                /* ferrix_net::forward::retarget_udp: new MACs, IPv4 destination and UDP
                 * destination port; both checksums updated incrementally (RFC 1624 eqn. 3);
                 * a UDP checksum of 0 stays 0, a computed 0 is sent as 0xffff. */
                hdr.eth.dstAddr = meta.dst_mac;
                hdr.eth.srcAddr = meta.router_mac;
                bit<32> s = (bit<32>)(~hdr.ipv4.hdrChecksum)
                    + (bit<32>)(~hdr.ipv4.dstAddr[31:16]) + (bit<32>)(~hdr.ipv4.dstAddr[15:0])
                    + (bit<32>)meta.dst_ip[31:16] + (bit<32>)meta.dst_ip[15:0];
                s = (s & 0xffff) + (s >> 16);
                s = (s & 0xffff) + (s >> 16);
                hdr.ipv4.hdrChecksum = ~s[15:0];
                if (hdr.udp.checksum != 0) {
                    bit<32> u = (bit<32>)(~hdr.udp.checksum)
                        + (bit<32>)(~hdr.ipv4.dstAddr[31:16]) + (bit<32>)(~hdr.ipv4.dstAddr[15:0])
                        + (bit<32>)(~hdr.udp.dstPort)
                        + (bit<32>)meta.dst_ip[31:16] + (bit<32>)meta.dst_ip[15:0]
                        + (bit<32>)meta.dst_port;
                    u = (u & 0xffff) + (u >> 16);
                    u = (u & 0xffff) + (u >> 16);
                    bit<16> c = ~u[15:0];
                    hdr.udp.checksum = c == 0 ? 16w0xffff : c;
                }
                hdr.ipv4.dstAddr = meta.dst_ip;
                hdr.udp.dstPort = meta.dst_port;
                standard_metadata.egress_spec = meta.dst_egress;
            } else {
                meta.s.window = meta.s.window + 1;
                if (meta.s.window >= meta.windows) {
                    meta.s.window = 0;
                    if (meta.s.eligible == 1) {
                        meta.s.round = meta.s.round + 1;
                        meta.s.parked = 0;
                    } else {
                        /* Every server at its bound: wait for FEEDBACK, from round 0. */
                        meta.s.round = 0;
                        meta.s.parked = 1;
                        stats.count(C_PARKED_SWEEPS);
                    }
                    meta.s.eligible = 0;
                }
                stats.count(C_RECIRCULATED);
                meta.recirc = 1;
                standard_metadata.egress_spec = meta.recirc_port;
            }
        }
    }
}

control RouterEgress(inout headers_t hdr, inout metadata_t meta,
                     inout standard_metadata_t standard_metadata) {
    apply {
        if (meta.recirc == 1) {
            recirculate_preserving_field_list(0);
        }
    }
}

control RouterComputeChecksum(inout headers_t hdr, inout metadata_t meta) {
    apply {
        /* Only the DROP gets a new IPv4 header; forwards are updated incrementally. */
        update_checksum(meta.refused == 1,
            { hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.diffserv, hdr.ipv4.totalLen,
              hdr.ipv4.identification, hdr.ipv4.flags, hdr.ipv4.fragOffset, hdr.ipv4.ttl,
              hdr.ipv4.protocol, hdr.ipv4.srcAddr, hdr.ipv4.dstAddr },
            hdr.ipv4.hdrChecksum, HashAlgorithm.csum16);
    }
}

control RouterDeparser(packet_out pkt, in headers_t hdr) {
    apply {
        pkt.emit(hdr.eth);
        pkt.emit(hdr.ipv4);
        pkt.emit(hdr.udp);
        pkt.emit(hdr.r2p2);
        pkt.emit(hdr.drop_msg);
        pkt.emit(hdr.pad);
        pkt.emit(hdr.fb);
        pkt.emit(hdr.fb_ext);
    }
}

V1Switch(RouterParser(), RouterVerifyChecksum(), RouterIngress(), RouterEgress(),
         RouterComputeChecksum(), RouterDeparser()) main;
