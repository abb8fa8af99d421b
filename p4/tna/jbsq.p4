/* tna/jbsq.p4: the R2P2 router's JBSQ(n) (thesis 10.5.2) for Tofino (TNA, tna.p4).
 *
 * SOURCE ONLY. Nothing on the project's machines compiles or runs this file: there is no
 * Tofino SDE (bf-p4c) here, and p4sim interprets v1model only. It is the v1model program
 * p4/jbsq.p4 (which CI runs against ferrix-router) rewritten against TNA's externs, to show
 * what the port takes; it has not been through bf-p4c, so expect the compiler to ask for
 * changes (stage fitting, PHV allocation). p4/README.md ("TNA") lists the differences.
 *
 * What changes from v1model:
 * - registers are read and written only through RegisterActions, and one register may be
 *   touched once per pass. So the per-server state is split into GROUP = 4 "lanes": server
 *   i lives in lane i % 4 at index i / 4, as an (outstanding, bound) pair, and one pass
 *   compares the four servers of one aligned window (servers 4w .. 4w + 3), one lane each,
 *   in consecutive stages; the first that qualifies is incremented by its own
 *   RegisterAction, later lanes are not touched (their action is not called).
 * - the round-robin start is a window (the cursor counts windows), not a server: ties break
 *   to the first server found from the start window. The v1model program starts at any
 *   server; this is the one decision that differs.
 * - recirculation keeps no metadata: the search state rides in a `search_h` header in
 *   front of Ethernet, which the parser expects on the recirculation port and the
 *   deparser drops when the REQ0 leaves.
 * - checksums: the IPv4 header checksum is recomputed by the deparser's Checksum extern;
 *   the UDP checksum is updated incrementally with the parser's residual (the old
 *   destination address and port subtracted) and the deparser adding the new ones. A UDP
 *   checksum of 0 stays 0; a computed 0 is not rewritten to 0xffff (ferrix_net does).
 * - served counts are 32 bits (the low half of the extension's 64-bit count): a count
 *   difference is taken modulo 2^32.
 * - only REQ0 / FEEDBACK and the IPv4 routes; the L2 segment (ARP proxy, bridging,
 *   flooding) of p4/jbsq.p4 is left out.
 */
#include <core.p4>
#include <tna.p4>

const bit<16> ETHERTYPE_IPV4 = 0x0800;
const bit<8>  IPPROTO_UDP = 17;
const bit<8>  R2P2_MAGIC = 0xcc;
const bit<4>  TYPE_FEEDBACK = 2;
/* Tofino 1, pipe 0: the recirculation port. */
const PortId_t RECIRC_PORT = 68;
/* Servers per lane (64 servers). */
const bit<32> LANE_SIZE = 16;
const bit<16> MAX_BOUND = 1024;

/* Indices of the `stats` counter (the v1model program's). */
const bit<32> C_RX = 0;
const bit<32> C_REQ0 = 1;
const bit<32> C_FEEDBACK = 2;
const bit<32> C_HEARTBEATS = 3;
const bit<32> C_FORWARDED = 4;
const bit<32> C_MALFORMED = 5;
const bit<32> C_MALFORMED_FEEDBACK = 6;
const bit<32> C_FEEDBACK_UNKNOWN = 10;
const bit<32> C_RECIRCULATED = 11;
const bit<32> C_PARKED_SWEEPS = 12;
const bit<32> C_NO_SERVER = 14;

/* The search state of a recirculating REQ0 (v1model: field list 0). */
header search_h {
    bit<16> round;
    bit<8>  window;
    bit<8>  start;
    bit<1>  eligible;
    bit<1>  fixed;
    bit<1>  parked;
    bit<5>  _pad;
}

header ethernet_h {
    bit<48> dst_addr;
    bit<48> src_addr;
    bit<16> ether_type;
}

header ipv4_h {
    bit<4>  version;
    bit<4>  ihl;
    bit<8>  diffserv;
    bit<16> total_len;
    bit<16> identification;
    bit<3>  flags;
    bit<13> frag_offset;
    bit<8>  ttl;
    bit<8>  protocol;
    bit<16> hdr_checksum;
    bit<32> src_addr;
    bit<32> dst_addr;
}

header udp_h {
    bit<16> src_port;
    bit<16> dst_port;
    bit<16> length;
    bit<16> checksum;
}

header r2p2_h {
    bit<8>  magic;
    bit<8>  header_size;
    bit<4>  msg_type;
    bit<4>  policy;
    bit<8>  flags;
    bit<16> rid;
    bit<16> p_order;
}

header feedback_h {
    bit<16> rid;
    bit<16> client_port;
    bit<32> client_ip;
}

header feedback_ext_h {
    bit<32> n;
    bit<32> served_hi;
    bit<32> served;
}

struct header_t {
    search_h       search;
    ethernet_h     eth;
    ipv4_h         ipv4;
    udp_h          udp;
    r2p2_h         r2p2;
    feedback_h     fb;
    feedback_ext_h fb_ext;
}

/* A lane cell: one server's outstanding count and bound. */
struct slot_t {
    bit<16> outstanding;
    bit<16> bound;
}

struct ig_metadata_t {
    bit<16>  udp_residual;
    bool     retarget;
    /* From the config table. */
    bit<8>   k;
    bit<8>   windows;
    bit<48>  router_mac;
    /* The search: this pass's round and window index, the verdicts of the four lanes. */
    bit<16>  round;
    bit<8>   window;
    bit<2>   v0;
    bit<2>   v1;
    bit<2>   v2;
    bit<2>   v3;
    bit<8>   chosen;
    bit<8>   fb_index;
    bit<8>   fb_lane_index;
    bit<2>   fb_lane;
    bit<16>  freed;
    bit<16>  new_bound;
    bool     set_bound;
    bit<32>  served_delta;
}

struct eg_metadata_t { }

parser SwitchIngressParser(packet_in pkt, out header_t hdr, out ig_metadata_t meta,
                           out ingress_intrinsic_metadata_t ig_intr_md) {
    Checksum() udp_csum;

    state start {
        pkt.extract(ig_intr_md);
        pkt.advance(PORT_METADATA_SIZE);
        meta.udp_residual = 0;
        meta.retarget = false;
        transition select(ig_intr_md.ingress_port) {
            RECIRC_PORT: parse_search;
            default: parse_ethernet;
        }
    }
    state parse_search {
        pkt.extract(hdr.search);
        transition parse_ethernet;
    }
    state parse_ethernet {
        pkt.extract(hdr.eth);
        transition select(hdr.eth.ether_type) {
            ETHERTYPE_IPV4: parse_ipv4;
            default: accept;
        }
    }
    state parse_ipv4 {
        pkt.extract(hdr.ipv4);
        transition select(hdr.ipv4.ihl, hdr.ipv4.protocol, hdr.ipv4.flags[0:0],
                          hdr.ipv4.frag_offset) {
            (5, IPPROTO_UDP, 0, 0): parse_udp;
            default: accept;
        }
    }
    state parse_udp {
        pkt.extract(hdr.udp);
        /* The residual of the UDP checksum without the fields a forward rewrites. */
        udp_csum.subtract({hdr.udp.checksum, hdr.ipv4.dst_addr, hdr.udp.dst_port});
        udp_csum.subtract_all_and_deposit(meta.udp_residual);
        pkt.extract(hdr.r2p2);
        transition select(hdr.r2p2.msg_type, hdr.r2p2.header_size) {
            (TYPE_FEEDBACK, 8): parse_feedback;
            default: accept;
        }
    }
    /* FEEDBACK with an 8-byte R2P2 header (longer headers: malformed_feedback; v1model
     * skips up to 32 bytes with a header stack). */
    state parse_feedback {
        pkt.extract(hdr.fb);
        transition select(hdr.udp.length) {
            0 .. 35: accept;
            default: parse_feedback_ext;
        }
    }
    state parse_feedback_ext {
        pkt.extract(hdr.fb_ext);
        transition accept;
    }
}

control SwitchIngress(inout header_t hdr, inout ig_metadata_t meta,
                      in ingress_intrinsic_metadata_t ig_intr_md,
                      in ingress_intrinsic_metadata_from_parser_t ig_prsr_md,
                      inout ingress_intrinsic_metadata_for_deparser_t ig_dprsr_md,
                      inout ingress_intrinsic_metadata_for_tm_t ig_tm_md) {
    Counter<bit<64>, bit<32>>(16, CounterType_t.PACKETS) stats;

    /* The four lanes; a search returns 2 (taken: incremented), 1 (below its bound, more
     * than `round` outstanding) or 0 (at its bound). */
    Register<slot_t, bit<8>>(LANE_SIZE) lane0;
    Register<slot_t, bit<8>>(LANE_SIZE) lane1;
    Register<slot_t, bit<8>>(LANE_SIZE) lane2;
    Register<slot_t, bit<8>>(LANE_SIZE) lane3;
    /* Last served count per server (+ 1: 0 means no count yet). */
    Register<bit<32>, bit<8>>(64) served_seen;
    Register<bit<8>, bit<8>>(64) served_valid;
    Register<bit<8>, bit<1>>(1) cursor;

#define LANE_ACTIONS(L)                                                              \
    RegisterAction<slot_t, bit<8>, bit<2>>(lane##L) search##L = {                   \
        void apply(inout slot_t s, out bit<2> verdict) {                             \
            verdict = 0;                                                             \
            if (s.outstanding < s.bound) {                                           \
                verdict = 1;                                                         \
                if (s.outstanding <= meta.round) {                                   \
                    s.outstanding = s.outstanding + 1;                               \
                    verdict = 2;                                                     \
                }                                                                    \
            }                                                                        \
        }                                                                            \
    };                                                                               \
    RegisterAction<slot_t, bit<8>, bit<2>>(lane##L) fixed##L = {                    \
        void apply(inout slot_t s, out bit<2> verdict) {                             \
            verdict = 0;                                                             \
            if (s.bound > 0) {                                                       \
                s.outstanding = s.outstanding + 1;                                   \
                verdict = 2;                                                         \
            }                                                                        \
        }                                                                            \
    };                                                                               \
    RegisterAction<slot_t, bit<8>, bit<2>>(lane##L) release##L = {                  \
        void apply(inout slot_t s) {                                                 \
            s.outstanding = s.outstanding |-| meta.freed;                            \
            if (meta.set_bound) {                                                    \
                s.bound = meta.new_bound;                                            \
            }                                                                        \
        }                                                                            \
    };

    LANE_ACTIONS(0)
    LANE_ACTIONS(1)
    LANE_ACTIONS(2)
    LANE_ACTIONS(3)

    /* served count: the increase since the last one (0 on the first). */
    RegisterAction<bit<32>, bit<8>, bit<32>>(served_seen) served_delta = {
        void apply(inout bit<32> seen, out bit<32> delta) {
            delta = hdr.fb_ext.served - seen;
            seen = hdr.fb_ext.served;
        }
    };
    RegisterAction<bit<8>, bit<8>, bit<8>>(served_valid) served_mark = {
        void apply(inout bit<8> v, out bit<8> was) {
            was = v;
            v = 1;
        }
    };
    /* The start window of the next LB search. */
    RegisterAction<bit<8>, bit<1>, bit<8>>(cursor) cursor_next = {
        void apply(inout bit<8> c, out bit<8> start) {
            start = c;
            if (c + 1 >= meta.windows) {
                c = 0;
            } else {
                c = c + 1;
            }
        }
    };

    action drop() {
        ig_dprsr_md.drop_ctl = 1;
    }
    action set_config(bit<8> k, bit<8> windows, bit<48> router_mac) {
        meta.k = k;
        meta.windows = windows;
        meta.router_mac = router_mac;
    }
    table config {
        actions = { set_config; }
        default_action = set_config(0, 0, 0);
    }

    action to_router() { }
    table router_addr {
        key = {
            hdr.ipv4.dst_addr: exact;
            hdr.udp.dst_port: exact;
        }
        actions = { to_router; NoAction; }
        default_action = NoAction();
        size = 16;
    }

    action set_nhop(bit<48> dmac, PortId_t port) {
        hdr.eth.src_addr = hdr.eth.dst_addr;
        hdr.eth.dst_addr = dmac;
        hdr.ipv4.ttl = hdr.ipv4.ttl - 1;
        ig_tm_md.ucast_egress_port = port;
    }
    table ipv4_lpm {
        key = { hdr.ipv4.dst_addr: lpm; }
        actions = { set_nhop; drop; }
        default_action = drop();
        size = 1024;
    }

    action req0_lb() { }
    action req0_fixed() { hdr.search.fixed = 1; }
    action feedback() { }
    action other() { }
    table classify {
        key = {
            hdr.r2p2.msg_type: ternary;
            hdr.r2p2.flags: ternary;
            hdr.r2p2.policy: range;
        }
        actions = { req0_lb; req0_fixed; feedback; other; }
        default_action = other();
        size = 16;
    }

    action set_server(bit<32> ip, bit<16> port, bit<48> mac, PortId_t egress) {
        hdr.eth.dst_addr = mac;
        hdr.eth.src_addr = meta.router_mac;
        hdr.ipv4.dst_addr = ip;
        hdr.udp.dst_port = port;
        ig_tm_md.ucast_egress_port = egress;
    }
    table server_addr {
        key = { meta.chosen: exact; }
        actions = { set_server; drop; }
        default_action = drop();
        size = 64;
    }

    action set_index(bit<8> index) {
        meta.fb_index = index;
        meta.fb_lane = index[1:0];
        meta.fb_lane_index = index >> 2;
    }
    table server_index {
        key = {
            hdr.ipv4.src_addr: exact;
            hdr.udp.src_port: exact;
        }
        actions = { set_index; NoAction; }
        default_action = NoAction();
        size = 64;
    }

    apply {
        config.apply();
        if (!hdr.search.isValid()) {
            if (!hdr.udp.isValid()) {
                if (hdr.ipv4.isValid()) { ipv4_lpm.apply(); } else { drop(); }
                exit;
            }
            if (!router_addr.apply().hit) {
                ipv4_lpm.apply();
                exit;
            }
            stats.count(C_RX);
            if (hdr.r2p2.magic != R2P2_MAGIC || hdr.r2p2.header_size < 8 || hdr.udp.length < 16) {
                stats.count(C_MALFORMED);
                drop();
                exit;
            }
            hdr.search.setValid();
            hdr.search.round = 0;
            hdr.search.window = 0;
            hdr.search.eligible = 0;
            hdr.search.parked = 0;
            hdr.search.fixed = 0;
            hdr.search.start = 0;
            switch (classify.apply().action_run) {
                feedback: {
                    hdr.search.setInvalid();
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
                    bool heartbeat = hdr.fb.client_ip == 0 && hdr.fb.client_port == 0;
                    meta.freed = heartbeat ? 16w0 : 16w1;
                    meta.set_bound = false;
                    if (hdr.fb_ext.isValid()) {
                        meta.set_bound = true;
                        meta.new_bound = hdr.fb_ext.n > (bit<32>)MAX_BOUND ? MAX_BOUND : hdr.fb_ext.n[15:0];
                        bit<8> valid = served_mark.execute(meta.fb_index);
                        bit<32> d = served_delta.execute(meta.fb_index);
                        if (valid != 0) {
                            meta.freed = d > 0xffff ? 16w0xffff : d[15:0];
                        }
                    }
                    if (heartbeat) {
                        stats.count(C_HEARTBEATS);
                    }
                    if (meta.fb_lane == 0) { release0.execute(meta.fb_lane_index); }
                    else if (meta.fb_lane == 1) { release1.execute(meta.fb_lane_index); }
                    else if (meta.fb_lane == 2) { release2.execute(meta.fb_lane_index); }
                    else { release3.execute(meta.fb_lane_index); }
                    drop();
                    exit;
                }
                other: {
                    hdr.search.setInvalid();
                    drop();
                    exit;
                }
                req0_lb: {
                    hdr.search.start = cursor_next.execute(0);
                }
            }
            stats.count(C_REQ0);
            if (meta.k == 0) {
                stats.count(C_NO_SERVER);
                drop();
                exit;
            }
        }

        /* One pass: the aligned window (start + window) mod windows, lanes 0..3 in order. */
        bit<8> w = hdr.search.start + hdr.search.window;
        if (w >= meta.windows) {
            w = w - meta.windows;
        }
        meta.round = hdr.search.round;
        meta.v0 = 0;
        meta.v1 = 0;
        meta.v2 = 0;
        meta.v3 = 0;
        if (hdr.search.fixed == 1) {
            meta.v0 = fixed0.execute(w);
            if (meta.v0 != 2) { meta.v1 = fixed1.execute(w); }
            if (meta.v0 != 2 && meta.v1 != 2) { meta.v2 = fixed2.execute(w); }
            if (meta.v0 != 2 && meta.v1 != 2 && meta.v2 != 2) { meta.v3 = fixed3.execute(w); }
        } else {
            meta.v0 = search0.execute(w);
            if (meta.v0 != 2) { meta.v1 = search1.execute(w); }
            if (meta.v0 != 2 && meta.v1 != 2) { meta.v2 = search2.execute(w); }
            if (meta.v0 != 2 && meta.v1 != 2 && meta.v2 != 2) { meta.v3 = search3.execute(w); }
        }
        bool found = true;
        if (meta.v0 == 2) { meta.chosen = w << 2; }
        else if (meta.v1 == 2) { meta.chosen = (w << 2) | 1; }
        else if (meta.v2 == 2) { meta.chosen = (w << 2) | 2; }
        else if (meta.v3 == 2) { meta.chosen = (w << 2) | 3; }
        else { found = false; }

        if (found) {
            stats.count(C_FORWARDED);
            hdr.search.setInvalid();
            server_addr.apply();
            meta.retarget = true;
        } else {
            if (meta.v0 == 1 || meta.v1 == 1 || meta.v2 == 1 || meta.v3 == 1) {
                hdr.search.eligible = 1;
            }
            hdr.search.window = hdr.search.window + 1;
            if (hdr.search.window >= meta.windows) {
                hdr.search.window = 0;
                if (hdr.search.eligible == 1) {
                    hdr.search.round = hdr.search.round + 1;
                    hdr.search.parked = 0;
                } else {
                    hdr.search.round = 0;
                    hdr.search.parked = 1;
                    stats.count(C_PARKED_SWEEPS);
                }
                hdr.search.eligible = 0;
            }
            stats.count(C_RECIRCULATED);
            ig_tm_md.ucast_egress_port = RECIRC_PORT;
        }
    }
}

control SwitchIngressDeparser(packet_out pkt, inout header_t hdr, in ig_metadata_t meta,
                              in ingress_intrinsic_metadata_for_deparser_t ig_dprsr_md) {
    Checksum() ipv4_csum;
    Checksum() udp_csum;

    apply {
        if (hdr.ipv4.isValid()) {
            hdr.ipv4.hdr_checksum = ipv4_csum.update({
                hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.diffserv, hdr.ipv4.total_len,
                hdr.ipv4.identification, hdr.ipv4.flags, hdr.ipv4.frag_offset, hdr.ipv4.ttl,
                hdr.ipv4.protocol, hdr.ipv4.src_addr, hdr.ipv4.dst_addr});
        }
        if (meta.retarget && hdr.udp.checksum != 0) {
            hdr.udp.checksum = udp_csum.update({
                hdr.ipv4.dst_addr, hdr.udp.dst_port, meta.udp_residual});
        }
        pkt.emit(hdr);
    }
}

/* Egress does nothing. */
parser SwitchEgressParser(packet_in pkt, out header_t hdr, out eg_metadata_t meta,
                          out egress_intrinsic_metadata_t eg_intr_md) {
    state start {
        pkt.extract(eg_intr_md);
        transition accept;
    }
}

control SwitchEgress(inout header_t hdr, inout eg_metadata_t meta,
                     in egress_intrinsic_metadata_t eg_intr_md,
                     in egress_intrinsic_metadata_from_parser_t eg_prsr_md,
                     inout egress_intrinsic_metadata_for_deparser_t eg_dprsr_md,
                     inout egress_intrinsic_metadata_for_output_port_t eg_oport_md) {
    apply { }
}

control SwitchEgressDeparser(packet_out pkt, inout header_t hdr, in eg_metadata_t meta,
                             in egress_intrinsic_metadata_for_deparser_t eg_dprsr_md) {
    apply {
        pkt.emit(hdr);
    }
}

Pipeline(SwitchIngressParser(), SwitchIngress(), SwitchIngressDeparser(),
         SwitchEgressParser(), SwitchEgress(), SwitchEgressDeparser()) pipe;

Switch(pipe) main;
