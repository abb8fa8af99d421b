/* tna/slog.p4: SLOG (thesis chapter 5, figure 5.2) for Tofino (TNA, tna.p4).
 *
 * SOURCE ONLY. Nothing on the project's machines compiles or runs this file (no Tofino SDE,
 * and p4sim interprets v1model only); it has not been through bf-p4c. The executable
 * program is p4/slog.p4 (v1model), tested in p4sim (tools/p4sim/tests/slog_diff.rs); this is
 * the same design with Tofino's fixed-function units where v1model has none:
 * - packet generation: the packet generator (pktgen) replaces v1model's recirculated
 *   trigger. The control plane loads the request template (Ethernet / IPv4 / UDP / payload)
 *   into the pktgen buffer and enables a periodic timer application (Tofino 1:
 *   `tf1.pktgen.app_cfg`, trigger timer_periodic, timer = dt, batch and packet counts
 *   for the duration), so one generated packet enters the pipeline every dt on the pktgen
 *   port, behind a pktgen_timer_header_t (batch and packet ids: the slot). No trigger
 *   loops; the experiment ends when pktgen stops.
 * - pacing: ingress draws a 32-bit Random per generated packet and range-matches it in
 *   `pace`, as p4/slog.p4: a hit sends to the entry's target, a miss drops the packet before
 *   the traffic manager (the thesis drops in egress; dropping in ingress keeps dropped
 *   slots out of the queues and needs the same table).
 * - TX timestamp: egress writes the low 32 bits of the egress global timestamp (ns, so a
 *   latency wraps after 4.29 s) into the IPv4 source's low 16 bits and the UDP source port,
 *   after the queues, as the thesis does.
 * - RX and latency: ingress global timestamp (ns) minus the echoed TX time; the histogram is
 *   a range table with a direct counter (the thesis's "table counters"): the entry hit is
 *   the bucket; the control plane reads the direct counter of each entry.
 * The control plane's tables (pace, target, latency_hist, config) are p4/slog.p4's, with
 * edges in ns instead of us.
 */
#include <core.p4>
#include <tna.p4>

const bit<16> ETHERTYPE_IPV4 = 0x0800;
const bit<8>  IPPROTO_UDP = 17;
/* Tofino 1, pipe 0: the packet generator's port. */
const PortId_t PKTGEN_PORT = 68;

const bit<32> C_SLOTS = 0;
const bit<32> C_SENT = 1;
const bit<32> C_DROPPED = 2;
const bit<32> C_RECEIVED = 3;
const bit<32> C_UNBUCKETED = 4;
const bit<32> C_OTHER = 5;

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

/* Ingress to egress: this is a request, to target `target`, of slot `slot`. */
header bridge_h {
    bit<8>  target;
    bit<16> slot;
}

struct header_t {
    bridge_h              bridge;
    pktgen_timer_header_t pktgen;
    ethernet_h            eth;
    ipv4_h                ipv4;
    udp_h                 udp;
}

struct ig_metadata_t {
    bit<16> net_hi;
    bit<32> draw;
    bit<32> latency;
}

struct eg_metadata_t { }

parser SlogIngressParser(packet_in pkt, out header_t hdr, out ig_metadata_t meta,
                         out ingress_intrinsic_metadata_t ig_intr_md) {
    state start {
        pkt.extract(ig_intr_md);
        pkt.advance(PORT_METADATA_SIZE);
        transition select(ig_intr_md.ingress_port) {
            PKTGEN_PORT: parse_pktgen;
            default: parse_ethernet;
        }
    }
    state parse_pktgen {
        pkt.extract(hdr.pktgen);
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
        transition select(hdr.ipv4.ihl, hdr.ipv4.protocol) {
            (5, IPPROTO_UDP): parse_udp;
            default: accept;
        }
    }
    state parse_udp {
        pkt.extract(hdr.udp);
        transition accept;
    }
}

control SlogIngress(inout header_t hdr, inout ig_metadata_t meta,
                    in ingress_intrinsic_metadata_t ig_intr_md,
                    in ingress_intrinsic_metadata_from_parser_t ig_prsr_md,
                    inout ingress_intrinsic_metadata_for_deparser_t ig_dprsr_md,
                    inout ingress_intrinsic_metadata_for_tm_t ig_tm_md) {
    Counter<bit<64>, bit<32>>(8, CounterType_t.PACKETS) stats;
    DirectCounter<bit<64>>(CounterType_t.PACKETS) histogram;
    Random<bit<32>>() rng;

    action drop() {
        ig_dprsr_md.drop_ctl = 1;
    }
    action set_config(bit<16> net_hi) {
        meta.net_hi = net_hi;
    }
    table config {
        actions = { set_config; }
        default_action = set_config(0);
    }

    action send(bit<8> target, PortId_t port) {
        hdr.bridge.setValid();
        hdr.bridge.target = target;
        hdr.bridge.slot = hdr.pktgen.packet_id;
        ig_tm_md.ucast_egress_port = port;
    }
    action skip() {
        drop();
    }
    table pace {
        key = { meta.draw: range; }
        actions = { send; skip; }
        default_action = skip();
        size = 16;
    }

    action bucket() {
        histogram.count();
    }
    table latency_hist {
        key = { meta.latency: range; }
        actions = { bucket; }
        const default_action = bucket();
        counters = histogram;
        size = 256;
    }

    apply {
        config.apply();
        if (hdr.pktgen.isValid()) {
            stats.count(C_SLOTS);
            meta.draw = rng.get();
            switch (pace.apply().action_run) {
                send: { stats.count(C_SENT); }
                skip: { stats.count(C_DROPPED); }
            }
            hdr.pktgen.setInvalid();
        } else if (hdr.udp.isValid() && hdr.ipv4.dst_addr[31:16] == meta.net_hi) {
            bit<32> tx = hdr.ipv4.dst_addr[15:0] ++ hdr.udp.dst_port;
            meta.latency = ig_prsr_md.global_tstamp[31:0] - tx;
            stats.count(C_RECEIVED);
            /* A miss (below the first edge) counts in the default entry's counter. */
            latency_hist.apply();
            drop();
        } else {
            stats.count(C_OTHER);
            drop();
        }
    }
}

control SlogIngressDeparser(packet_out pkt, inout header_t hdr, in ig_metadata_t meta,
                            in ingress_intrinsic_metadata_for_deparser_t ig_dprsr_md) {
    apply {
        pkt.emit(hdr);
    }
}

parser SlogEgressParser(packet_in pkt, out header_t hdr, out eg_metadata_t meta,
                        out egress_intrinsic_metadata_t eg_intr_md) {
    state start {
        pkt.extract(eg_intr_md);
        pkt.extract(hdr.bridge);
        pkt.extract(hdr.eth);
        pkt.extract(hdr.ipv4);
        pkt.extract(hdr.udp);
        transition accept;
    }
}

control SlogEgress(inout header_t hdr, inout eg_metadata_t meta,
                   in egress_intrinsic_metadata_t eg_intr_md,
                   in egress_intrinsic_metadata_from_parser_t eg_prsr_md,
                   inout egress_intrinsic_metadata_for_deparser_t eg_dprsr_md,
                   inout egress_intrinsic_metadata_for_output_port_t eg_oport_md) {
    action set_target(bit<48> mac, bit<32> ip, bit<16> port) {
        hdr.eth.dst_addr = mac;
        hdr.ipv4.dst_addr = ip;
        hdr.udp.dst_port = port;
    }
    table target {
        key = { hdr.bridge.target: exact; }
        actions = { set_target; NoAction; }
        default_action = NoAction();
        size = 16;
    }

    apply {
        target.apply();
        bit<32> ts = eg_prsr_md.global_tstamp[31:0];
        hdr.ipv4.src_addr[15:0] = ts[31:16];
        hdr.udp.src_port = ts[15:0];
        hdr.ipv4.identification = hdr.bridge.slot;
        hdr.udp.checksum = 0;
        hdr.bridge.setInvalid();
    }
}

control SlogEgressDeparser(packet_out pkt, inout header_t hdr, in eg_metadata_t meta,
                           in egress_intrinsic_metadata_for_deparser_t eg_dprsr_md) {
    Checksum() ipv4_csum;

    apply {
        hdr.ipv4.hdr_checksum = ipv4_csum.update({
            hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.diffserv, hdr.ipv4.total_len,
            hdr.ipv4.identification, hdr.ipv4.flags, hdr.ipv4.frag_offset, hdr.ipv4.ttl,
            hdr.ipv4.protocol, hdr.ipv4.src_addr, hdr.ipv4.dst_addr});
        pkt.emit(hdr);
    }
}

Pipeline(SlogIngressParser(), SlogIngress(), SlogIngressDeparser(),
         SlogEgressParser(), SlogEgress(), SlogEgressDeparser()) pipe;

Switch(pipe) main;
