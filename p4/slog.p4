/* slog.p4: SLOG, the switch load generator of thesis chapter 5, on v1model.
 *
 * v1model has no packet generator. The control plane injects one trigger packet on the
 * generator port (`gen_port`, a CPU or loopback port): it is the template of every request
 * (Ethernet / IPv4 / UDP / payload) and it recirculates, one pass per slot of dt (the
 * generator's period; Tofino's pktgen takes its place in p4/tna/slog.p4, p4/README.md says
 * how). In each slot:
 * - a 32-bit `random` draw is range-matched in `pace`: a hit sends this slot's request to
 *   the entry's target (an ingress-to-egress clone of the template to the target's clone
 *   session), a miss drops the slot. The control plane gives target i the draws
 *   [i * T, (i + 1) * T) with T = round(2^32 * p / targets), p = rate * dt: sends form a
 *   Bernoulli process of p per slot, whose gaps are geometric (the discrete exponential),
 *   split at random among the targets (each again a Bernoulli process of p / targets).
 * - the request's egress writes the TX timestamp (egress_global_timestamp, low 32 bits, us)
 *   into header fields that the reply echoes (thesis 5.2): its high half in the low 16 bits
 *   of the IPv4 source (the generator owns a /16), its low half in the UDP source port.
 * - after `slots` slots the trigger is dropped: the experiment is over.
 * A reply (IPv4/UDP to the generator's /16, not on gen_port) gives the latency
 * ingress_global_timestamp - TX (mod 2^32, us); `latency_hist` range-matches it to a
 * histogram bucket (an indexed counter: the action's parameter is the index) and the reply
 * is consumed. Counters: `stats` (slots, sent, dropped slots, received, unbucketed, other),
 * `sent_to` per target, `histogram` per bucket. Control plane: tools/p4sim/src/control/slog.rs.
 */
#include <core.p4>
#include <v1model.p4>

const bit<16> ETHERTYPE_IPV4 = 0x0800;
const bit<8>  IPPROTO_UDP = 17;
const bit<32> INSTANCE_I2E_CLONE = 1;
const bit<32> INSTANCE_RECIRC = 4;
/* Target t's requests leave through clone session CLONE_BASE + t. */
const bit<32> CLONE_BASE = 100;
const bit<32> MAX_TARGETS = 16;
const bit<32> MAX_BUCKETS = 256;

/* Indices of the `stats` counter (control::slog::COUNTERS). */
const bit<32> C_SLOTS = 0;
const bit<32> C_SENT = 1;
const bit<32> C_DROPPED = 2;
const bit<32> C_RECEIVED = 3;
const bit<32> C_UNBUCKETED = 4;
const bit<32> C_OTHER = 5;
const bit<32> C_DONE = 6;

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

struct headers_t {
    ethernet_t eth;
    ipv4_t     ipv4;
    udp_t      udp;
}

/* What a request carries from ingress to its clone's egress (field list 1). */
struct gen_t {
    @field_list(1) bit<32> slot;
    @field_list(1) bit<8>  target;
}

struct metadata_t {
    gen_t    g;
    bit<1>   recirc;
    bit<32>  draw;
    bit<32>  latency;
    /* From the config table. */
    bit<9>   gen_port;
    bit<9>   recirc_port;
    bit<32>  slots;
    bit<16>  net_hi;
}

parser SlogParser(packet_in pkt, out headers_t hdr, inout metadata_t meta,
                  inout standard_metadata_t standard_metadata) {
    state start {
        pkt.extract(hdr.eth);
        transition select(hdr.eth.etherType) {
            ETHERTYPE_IPV4: parse_ipv4;
            default: accept;
        }
    }
    state parse_ipv4 {
        pkt.extract(hdr.ipv4);
        transition select(hdr.ipv4.ihl, hdr.ipv4.protocol, hdr.ipv4.flags[0:0],
                          hdr.ipv4.fragOffset) {
            (5, IPPROTO_UDP, 0, 0): parse_udp;
            default: accept;
        }
    }
    state parse_udp {
        pkt.extract(hdr.udp);
        transition accept;
    }
}

control SlogVerifyChecksum(inout headers_t hdr, inout metadata_t meta) {
    apply { }
}

control SlogIngress(inout headers_t hdr, inout metadata_t meta,
                    inout standard_metadata_t standard_metadata) {
    /* The next slot (the control plane writes 0 before it injects the trigger). */
    @id(1) register<bit<32>>(1) slot;
    @id(2) counter(8, CounterType.packets) stats;
    @id(3) counter(MAX_TARGETS, CounterType.packets) sent_to;
    @id(4) counter(MAX_BUCKETS, CounterType.packets) histogram;

    @id(1) action drop() {
        mark_to_drop(standard_metadata);
    }
    @id(2) action set_config(bit<9> gen_port, bit<9> recirc_port, bit<32> slots, bit<16> net_hi) {
        meta.gen_port = gen_port;
        meta.recirc_port = recirc_port;
        meta.slots = slots;
        meta.net_hi = net_hi;
    }
    /* Singleton: where the trigger enters and loops, the experiment's length in slots, and
     * the high half of the generator's /16 (replies are addressed into it). */
    @id(1) table config {
        actions = { set_config; }
        default_action = set_config(0, 0, 0, 0);
    }

    @id(3) action send(bit<8> target) {
        meta.g.target = target;
    }
    @id(4) action skip() { }
    /* The slot's draw -> send to a target, or drop the slot (the miss). */
    @id(2) table pace {
        key = { meta.draw: range; }
        actions = { send; skip; }
        default_action = skip();
        size = 16;
    }

    @id(5) action bucket(bit<32> index) {
        histogram.count(index);
    }
    @id(6) action unbucketed() {
        stats.count(C_UNBUCKETED);
    }
    /* Latency (us) -> histogram bucket: one range per bucket, from the configured edges. */
    @id(3) table latency_hist {
        key = { meta.latency: range; }
        actions = { bucket; unbucketed; }
        default_action = unbucketed();
        size = MAX_BUCKETS;
    }

    apply {
        meta.recirc = 0;
        config.apply();
        bool trigger = standard_metadata.instance_type == INSTANCE_RECIRC
            || standard_metadata.ingress_port == meta.gen_port;
        if (trigger) {
            bit<32> s;
            slot.read(s, 0);
            if (s >= meta.slots) {
                stats.count(C_DONE);
                drop();
                exit;
            }
            slot.write(0, s + 1);
            stats.count(C_SLOTS);
            meta.g.slot = s;
            random(meta.draw, 32w0, 32w0xffffffff);
            switch (pace.apply().action_run) {
                send: {
                    stats.count(C_SENT);
                    sent_to.count((bit<32>)meta.g.target);
                    clone_preserving_field_list(CloneType.I2E,
                        CLONE_BASE + (bit<32>)meta.g.target, 1);
                }
                skip: {
                    stats.count(C_DROPPED);
                }
            }
            if (s + 1 < meta.slots) {
                /* The next slot. */
                meta.recirc = 1;
                standard_metadata.egress_spec = meta.recirc_port;
            } else {
                stats.count(C_DONE);
                drop();
            }
            exit;
        }
        if (hdr.udp.isValid() && hdr.ipv4.dstAddr[31:16] == meta.net_hi) {
            /* A reply: the destination is the request's source, so it carries TX. */
            bit<32> tx = hdr.ipv4.dstAddr[15:0] ++ hdr.udp.dstPort;
            meta.latency = standard_metadata.ingress_global_timestamp[31:0] - tx;
            stats.count(C_RECEIVED);
            latency_hist.apply();
        } else {
            stats.count(C_OTHER);
        }
        drop();
    }
}

control SlogEgress(inout headers_t hdr, inout metadata_t meta,
                   inout standard_metadata_t standard_metadata) {
    @id(7) action set_target(bit<48> mac, bit<32> ip, bit<16> port) {
        hdr.eth.dstAddr = mac;
        hdr.ipv4.dstAddr = ip;
        hdr.udp.dstPort = port;
    }
    /* Target index -> the request's destination (its port is the clone session's). */
    @id(4) table target {
        key = { meta.g.target: exact; }
        actions = { set_target; NoAction; }
        default_action = NoAction();
        size = MAX_TARGETS;
    }

    apply {
        if (standard_metadata.instance_type == INSTANCE_I2E_CLONE) {
            /* A request: TX timestamp in the echoed fields, the slot in the IPv4 id. */
            target.apply();
            bit<32> ts = standard_metadata.egress_global_timestamp[31:0];
            hdr.ipv4.srcAddr = hdr.ipv4.srcAddr[31:16] ++ ts[31:16];
            hdr.udp.srcPort = ts[15:0];
            hdr.ipv4.identification = meta.g.slot[15:0];
            hdr.udp.checksum = 0;
        } else if (meta.recirc == 1) {
            recirculate_preserving_field_list(1);
        }
    }
}

control SlogComputeChecksum(inout headers_t hdr, inout metadata_t meta) {
    apply {
        update_checksum(hdr.ipv4.isValid(),
            { hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.diffserv, hdr.ipv4.totalLen,
              hdr.ipv4.identification, hdr.ipv4.flags, hdr.ipv4.fragOffset, hdr.ipv4.ttl,
              hdr.ipv4.protocol, hdr.ipv4.srcAddr, hdr.ipv4.dstAddr },
            hdr.ipv4.hdrChecksum, HashAlgorithm.csum16);
    }
}

control SlogDeparser(packet_out pkt, in headers_t hdr) {
    apply {
        pkt.emit(hdr.eth);
        pkt.emit(hdr.ipv4);
        pkt.emit(hdr.udp);
    }
}

V1Switch(SlogParser(), SlogVerifyChecksum(), SlogIngress(), SlogEgress(),
         SlogComputeChecksum(), SlogDeparser()) main;
