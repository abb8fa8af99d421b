/* aggregator.p4: the HovercRaft++ in-network aggregator (thesis 12.4, 12.6.3-12.6.4), v1model.
 *
 * The same decisions as ferrix_raft::aggregator::Aggregator (apps/hovercraft/logic), on the
 * wire format of apps/hovercraft/logic/src/wire.rs (R2P2 RAFT_REQ / RAFT_REP payloads):
 * - AGG_AE_REQ (11) from the leader: one multicast to every other member (the datagram
 *   unchanged, from the aggregator's address). A higher term flushes every register (one
 *   leader per term); an older term, or the same term from another member, is stale. The
 *   leader's match index becomes the last index it multicast; an AGG_AE_REQ that does not
 *   extend it (heartbeat, resend) marks an AGG_COMMIT as owed.
 * - AE_REP (6, success) from a follower of the current term: its match index (at most what
 *   the leader multicast) and applied index are kept as maxima, its bit set in `fresh`. When
 *   the majority match index (the quorum-th largest, leader included) reaches the leader's
 *   term_start and exceeds the last announced commit, or an AGG_COMMIT is owed, one AGG_COMMIT
 *   (12) with every member's progress is multicast to every member.
 * - AGG_PROBE_REQ (13): adopt the term (flushing if higher) and answer AGG_PROBE_REP (14).
 * - Everything else well-formed is `unexpected`; bytes that ferrix_raft::wire::decode refuses
 *   are `malformed` (the checks a parser and one pass can make: see p4/README.md for the
 *   AppendEntries entries the switch cannot walk).
 * The Rust code sorts the match indices; here the quorum-th largest is found by an unrolled
 * rank count over MAX_NODES = 9 registers (one pass, no recirculation). The control plane
 * (tools/p4sim/src/control/aggregator.rs) installs the members, the aggregator's address and
 * the multicast group (replica rid = member id).
 */
#include <core.p4>
#include <v1model.p4>

const bit<16> ETHERTYPE_IPV4 = 0x0800;
const bit<8>  IPPROTO_UDP = 17;
const bit<8>  R2P2_MAGIC = 0xcc;
const bit<4>  TYPE_RAFT_REQ = 5;
const bit<4>  TYPE_RAFT_REP = 6;
const bit<4>  POLICY_FIXED = 1;
const bit<8>  FLAGS_FIRST_LAST = 0xc0;
const bit<8>  AGGREGATOR = 0xff;
const bit<8>  MAX_NODES = 9;
/* Entries of an AppendEntries the parser checks (the reference's per-message maximum). */
const bit<16> MAX_ENTRIES = 30;

/* ferrix_raft::wire message types. */
const bit<8> T_PRE_VOTE_REQ = 1;
const bit<8> T_PRE_VOTE_REP = 2;
const bit<8> T_VOTE_REQ = 3;
const bit<8> T_VOTE_REP = 4;
const bit<8> T_AE_REQ = 5;
const bit<8> T_AE_REP = 6;
const bit<8> T_SNAP_REQ = 7;
const bit<8> T_SNAP_REP = 8;
const bit<8> T_RECOVERY_REQ = 9;
const bit<8> T_RECOVERY_REP = 10;
const bit<8> T_AGG_AE_REQ = 11;
const bit<8> T_AGG_COMMIT = 12;
const bit<8> T_AGG_PROBE_REQ = 13;
const bit<8> T_AGG_PROBE_REP = 14;

/* What leaves for a packet (meta.kind). */
const bit<8> K_NONE = 0;
const bit<8> K_RELAY = 1;
const bit<8> K_COMMIT = 2;
const bit<8> K_PROBE_REP = 3;

/* Indices of the `stats` counter: the AggStats fields, then what the transport drops. */
const bit<32> C_MALFORMED = 0;
const bit<32> C_UNEXPECTED = 1;
const bit<32> C_STALE = 2;
const bit<32> C_FLUSHES = 3;
const bit<32> C_RELAYED = 4;
const bit<32> C_COMMITS = 5;
const bit<32> C_NOT_AGG = 6;
const bit<32> C_NOT_RAFT = 7;
const bit<32> C_SPOOFED = 8;

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

header r2p2_t {
    bit<8>  magic;
    bit<8>  header_size;
    bit<4>  msg_type;
    bit<4>  policy;
    bit<8>  flags;
    bit<16> rid;
    bit<16> p_order;
}

/* The common prefix of every Raft message. */
header prefix_t {
    bit<8>  msg_type;
    bit<8>  from;
    bit<64> term;
}

/* AE_REP. */
header ae_rep_t {
    bit<8>  success;
    bit<64> index;
    bit<64> hint_term;
    bit<64> applied;
}

/* PRE_VOTE_REP / VOTE_REP: the granted byte. */
header flag_t {
    bit<8> v;
}

/* AE_REQ and AGG_AE_REQ: what precedes term_start / count. */
header ae_t {
    bit<64> prev_index;
    bit<64> prev_term;
    bit<64> commit;
}

header term_start_t {
    bit<64> term_start;
}

/* The u16 count of AE_REQ, AGG_AE_REQ, RECOVERY_REQ and RECOVERY_REP. */
header count_t {
    bit<16> count;
}

header snap_t {
    bit<64> index;
    bit<64> term;
    bit<32> len;
}

/* An AppendEntries entry without its body. */
header entry_t {
    bit<64> term;
    bit<64> index;
    bit<8>  flags;
    bit<8>  replier;
    bit<32> ip;
    bit<16> port;
    bit<16> rid;
}

/* AGG_COMMIT after the prefix, and one member's progress. */
header commit_t {
    bit<64> commit;
    bit<16> fresh;
    bit<8>  count;
}

header progress_t {
    bit<64> matched;
    bit<64> applied;
}

struct headers_t {
    ethernet_t   eth;
    ipv4_t       ipv4;
    udp_t        udp;
    r2p2_t       r2p2;
    prefix_t     pfx;
    ae_rep_t     rep;
    flag_t       flag;
    ae_t         ae;
    term_start_t ts;
    count_t      cnt;
    snap_t       snap;
    entry_t[30]  ent;
    commit_t     cm;
    progress_t[9] prog;
}

struct metadata_t {
    /* From the config table. */
    bit<8>  nodes;
    bit<32> agg_ip;
    bit<16> agg_port;
    bit<48> agg_mac;
    bit<16> mgrp;
    /* Parser. */
    bit<16> body_len;
    bit<32> need;
    bit<1>  ent_ok;
    bit<16> left;
    /* Entry checks. */
    bit<64> prev;
    bit<1>  checking;
    bit<1>  bad;
    /* The member a reply goes to (the sender), and the replica's. */
    bit<1>  member_hit;
    bit<32> mem_ip;
    bit<16> mem_port;
    bit<48> mem_mac;
    bit<9>  mem_egress;
    /* What leaves. */
    bit<8>  kind;
    bit<8>  leader;
    bit<16> udp_len;
    /* Ones' complement sum of the UDP payload, folded to 16 bits. */
    bit<32> psum;
    bit<32> pacc;
    /* Majority. */
    bit<64> m0;
    bit<64> m1;
    bit<64> m2;
    bit<64> m3;
    bit<64> m4;
    bit<64> m5;
    bit<64> m6;
    bit<64> m7;
    bit<64> m8;
    bit<64> maj;
    bit<8>  rank;
    bit<8>  quorum;
}

parser AggParser(packet_in pkt, out headers_t hdr, inout metadata_t meta,
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
        transition select(hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.protocol,
                          hdr.ipv4.flags[0:0], hdr.ipv4.fragOffset) {
            (4, 5, IPPROTO_UDP, 0, 0): parse_udp;
            default: accept;
        }
    }
    /* Lengths come from the UDP header (Ethernet pads short frames); ingress checks the
     * UDP length against the frame. */
    state parse_udp {
        pkt.extract(hdr.udp);
        transition select(hdr.udp.length) {
            16 .. 0xffff: parse_r2p2;
            default: accept;
        }
    }
    state parse_r2p2 {
        pkt.extract(hdr.r2p2);
        meta.body_len = hdr.udp.length - 16;
        transition select(hdr.r2p2.magic, hdr.r2p2.header_size, meta.body_len) {
            (R2P2_MAGIC, 8, 10 .. 0xffff): parse_prefix;
            default: accept;
        }
    }
    state parse_prefix {
        pkt.extract(hdr.pfx);
        transition select(hdr.pfx.msg_type, meta.body_len) {
            (T_AE_REP, 35): parse_rep;
            (T_PRE_VOTE_REP, 11): parse_flag;
            (T_VOTE_REP, 11): parse_flag;
            (T_AE_REQ, 36 .. 0xffff): parse_ae;
            (T_AGG_AE_REQ, 44 .. 0xffff): parse_agg_ae;
            (T_SNAP_REQ, 30 .. 0xffff): parse_snap;
            (T_RECOVERY_REQ, 12 .. 0xffff): parse_count;
            (T_RECOVERY_REP, 12 .. 0xffff): parse_count;
            default: accept;
        }
    }
    state parse_rep {
        pkt.extract(hdr.rep);
        transition accept;
    }
    state parse_flag {
        pkt.extract(hdr.flag);
        transition accept;
    }
    state parse_snap {
        pkt.extract(hdr.snap);
        transition accept;
    }
    state parse_count {
        pkt.extract(hdr.cnt);
        transition accept;
    }
    state parse_ae {
        pkt.extract(hdr.ae);
        pkt.extract(hdr.cnt);
        meta.need = 36 + 26 * (bit<32>)hdr.cnt.count;
        transition entries;
    }
    state parse_agg_ae {
        pkt.extract(hdr.ae);
        pkt.extract(hdr.ts);
        pkt.extract(hdr.cnt);
        meta.need = 44 + 26 * (bit<32>)hdr.cnt.count;
        transition entries;
    }
    /* The first MAX_ENTRIES entries as 26-byte headers, when the datagram holds `count` of
     * them (wire::decode's truncation rule); ingress checks them. */
    state entries {
        meta.ent_ok = (bit<32>)meta.body_len >= meta.need ? 1w1 : 1w0;
        meta.left = hdr.cnt.count > MAX_ENTRIES ? MAX_ENTRIES : hdr.cnt.count;
        transition select(meta.ent_ok) {
            1: entry_loop;
            default: accept;
        }
    }
    state entry_loop {
        transition select(meta.left) {
            0: accept;
            default: entry_one;
        }
    }
    state entry_one {
        pkt.extract(hdr.ent.next);
        meta.left = meta.left - 1;
        transition entry_loop;
    }
}

control AggVerifyChecksum(inout headers_t hdr, inout metadata_t meta) {
    apply { }
}

control AggIngress(inout headers_t hdr, inout metadata_t meta,
                   inout standard_metadata_t standard_metadata) {
    /* The aggregator's soft state (Aggregator's fields). */
    @id(1) register<bit<64>>(1) term_r;
    @id(2) register<bit<8>>(1) leader_r;
    @id(3) register<bit<1>>(1) has_leader_r;
    @id(4) register<bit<64>>(1) term_start_r;
    @id(5) register<bit<64>>(9) matched_r;
    @id(6) register<bit<64>>(9) applied_r;
    @id(7) register<bit<16>>(1) fresh_r;
    @id(8) register<bit<64>>(1) commit_r;
    @id(9) register<bit<1>>(1) owed_r;
    @id(10) counter(16, CounterType.packets) stats;

    @id(1) action drop() {
        mark_to_drop(standard_metadata);
    }
    @id(2) action set_config(bit<8> nodes, bit<32> agg_ip, bit<16> agg_port, bit<48> agg_mac,
                             bit<16> mgrp) {
        meta.nodes = nodes;
        meta.agg_ip = agg_ip;
        meta.agg_port = agg_port;
        meta.agg_mac = agg_mac;
        meta.mgrp = mgrp;
    }
    /* Singleton: the cluster size, the aggregator's address, the members' multicast group. */
    @id(1) table config {
        actions = { set_config; }
        default_action = set_config(0, 0, 0, 0, 0);
    }

    @id(3) action set_member(bit<32> ip, bit<16> port, bit<48> mac, bit<9> egress) {
        meta.member_hit = 1;
        meta.mem_ip = ip;
        meta.mem_port = port;
        meta.mem_mac = mac;
        meta.mem_egress = egress;
    }
    /* Member id -> its address (the source its messages must come from) and port. */
    @id(2) table members {
        key = { hdr.pfx.from: exact; }
        actions = { set_member; NoAction; }
        default_action = NoAction();
        size = 16;
    }

    /* One AppendEntries entry (wire::decode_entry): index prev + 1 + i, known flags, a no-op
     * with no other flag, a request's replier a member. Checking stops after an entry with a
     * body (the parser cannot walk a body: README). */
    @id(4) action check_entry(bit<64> index, bit<8> flags, bit<8> replier, bit<64> i) {
        if (meta.checking == 1) {
            if (index != meta.prev + 1 + i || (flags & 0xf8) != 0) {
                meta.bad = 1;
            } else if ((flags & 1) == 0) {
                if (flags != 0) {
                    meta.bad = 1;
                }
            } else if (replier >= meta.nodes) {
                meta.bad = 1;
            } else if ((flags & 4) != 0) {
                meta.checking = 0;
            }
        }
    }

    /* The 16-bit words of a 64-bit field, into the payload sum. */
    @id(5) action sum64(bit<64> x) {
        meta.psum = meta.psum + (bit<32>)x[63:48] + (bit<32>)x[47:32] + (bit<32>)x[31:16]
            + (bit<32>)x[15:0];
    }
    @id(6) action psum64(bit<64> x) {
        meta.pacc = meta.pacc + (bit<32>)x[63:48] + (bit<32>)x[47:32] + (bit<32>)x[31:16]
            + (bit<32>)x[15:0];
    }

    /* Rank of v among the members' match indices; the largest v with at least a quorum
     * at or above it is the quorum-th largest (what Aggregator::answer's sort finds). */
    @id(7) action consider(bit<64> v, bit<8> i) {
        meta.rank = (meta.m0 >= v && 0 < meta.nodes ? 8w1 : 8w0)
            + (meta.m1 >= v && 1 < meta.nodes ? 8w1 : 8w0)
            + (meta.m2 >= v && 2 < meta.nodes ? 8w1 : 8w0)
            + (meta.m3 >= v && 3 < meta.nodes ? 8w1 : 8w0)
            + (meta.m4 >= v && 4 < meta.nodes ? 8w1 : 8w0)
            + (meta.m5 >= v && 5 < meta.nodes ? 8w1 : 8w0)
            + (meta.m6 >= v && 6 < meta.nodes ? 8w1 : 8w0)
            + (meta.m7 >= v && 7 < meta.nodes ? 8w1 : 8w0)
            + (meta.m8 >= v && 8 < meta.nodes ? 8w1 : 8w0);
        if (i < meta.nodes && meta.rank >= meta.quorum && v > meta.maj) {
            meta.maj = v;
        }
    }

    /* A higher term: everything of the old one goes (Aggregator::adopt). */
    @id(8) action flush(bit<64> term, bit<8> leader) {
        term_r.write(0, term);
        leader_r.write(0, leader);
        has_leader_r.write(0, 1);
        term_start_r.write(0, 0);
        fresh_r.write(0, 0);
        commit_r.write(0, 0);
        owed_r.write(0, 0);
        matched_r.write(0, 0);
        matched_r.write(1, 0);
        matched_r.write(2, 0);
        matched_r.write(3, 0);
        matched_r.write(4, 0);
        matched_r.write(5, 0);
        matched_r.write(6, 0);
        matched_r.write(7, 0);
        matched_r.write(8, 0);
        applied_r.write(0, 0);
        applied_r.write(1, 0);
        applied_r.write(2, 0);
        applied_r.write(3, 0);
        applied_r.write(4, 0);
        applied_r.write(5, 0);
        applied_r.write(6, 0);
        applied_r.write(7, 0);
        applied_r.write(8, 0);
        stats.count(C_FLUSHES);
    }

    /* The R2P2 header of a message the aggregator sends (RAFT_REP, FIXED_ROUTE, rid 0,
     * single packet) and the prefix, into the payload sum. */
    @id(9) action own_header(bit<8> msg_type) {
        hdr.r2p2.magic = R2P2_MAGIC;
        hdr.r2p2.header_size = 8;
        hdr.r2p2.msg_type = TYPE_RAFT_REP;
        hdr.r2p2.policy = POLICY_FIXED;
        hdr.r2p2.flags = FLAGS_FIRST_LAST;
        hdr.r2p2.rid = 0;
        hdr.r2p2.p_order = 1;
        hdr.pfx.msg_type = msg_type;
        hdr.pfx.from = AGGREGATOR;
        meta.psum = 0xcc08 + 0x61c0 + 0 + 1 + (bit<32>)(msg_type ++ AGGREGATOR);
        sum64(hdr.pfx.term);
    }

    @id(10) action progress(bit<8> i, bit<64> m, bit<64> a) {
        if (i < meta.nodes) {
            psum64(m);
            psum64(a);
        }
    }

    apply {
        meta.kind = K_NONE;
        meta.member_hit = 0;
        config.apply();
        meta.quorum = (meta.nodes >> 1) + 1;
        /* The transport: an IPv4/UDP datagram inside the frame, to the aggregator. */
        if (!hdr.udp.isValid() || hdr.udp.length < 8
                || (bit<32>)hdr.udp.length + 34 > standard_metadata.packet_length
                || hdr.ipv4.dstAddr != meta.agg_ip || hdr.udp.dstPort != meta.agg_port) {
            stats.count(C_NOT_AGG);
            drop();
            exit;
        }
        /* A single-header R2P2 RAFT_REQ / RAFT_REP. */
        if (!hdr.r2p2.isValid() || hdr.r2p2.magic != R2P2_MAGIC || hdr.r2p2.header_size != 8
                || (hdr.r2p2.msg_type != TYPE_RAFT_REQ && hdr.r2p2.msg_type != TYPE_RAFT_REP)) {
            stats.count(C_NOT_RAFT);
            drop();
            exit;
        }
        if (!hdr.pfx.isValid()) {
            stats.count(C_MALFORMED);
            drop();
            exit;
        }
        /* A member's message comes from that member's address. */
        members.apply();
        if (meta.member_hit == 1
                && (hdr.ipv4.srcAddr != meta.mem_ip || hdr.udp.srcPort != meta.mem_port)) {
            stats.count(C_SPOOFED);
            drop();
            exit;
        }

        /* wire::decode: the layout of each type. */
        bit<8> t = hdr.pfx.msg_type;
        bit<16> n = meta.body_len;
        bool ok = false;
        if (t == T_PRE_VOTE_REQ || t == T_VOTE_REQ) {
            ok = n == 26;
        } else if (t == T_PRE_VOTE_REP || t == T_VOTE_REP) {
            ok = hdr.flag.isValid() && hdr.flag.v <= 1;
        } else if (t == T_AE_REP) {
            ok = hdr.rep.isValid() && hdr.rep.success <= 1;
        } else if (t == T_SNAP_REQ) {
            ok = hdr.snap.isValid() && (bit<64>)hdr.snap.len + 30 == (bit<64>)n;
        } else if (t == T_SNAP_REP) {
            ok = n == 18;
        } else if (t == T_RECOVERY_REQ) {
            ok = hdr.cnt.isValid() && (bit<32>)n == 12 + 16 * (bit<32>)hdr.cnt.count;
        } else if (t == T_RECOVERY_REP) {
            /* Items of 13 bytes and more: only an empty list is checked for trailing bytes. */
            ok = hdr.cnt.isValid() && (hdr.cnt.count == 0 ? n == 12
                : (bit<32>)n >= 12 + 13 * (bit<32>)hdr.cnt.count);
        } else if (t == T_AGG_PROBE_REQ) {
            ok = n == 10;
        } else if (t == T_AE_REQ || t == T_AGG_AE_REQ) {
            if (hdr.cnt.isValid() && meta.ent_ok == 1) {
                bit<64> c = (bit<64>)hdr.cnt.count;
                /* An entry index beyond u64 is a bad field. */
                ok = c == 0 || hdr.ae.prev_index + c > hdr.ae.prev_index;
                meta.prev = hdr.ae.prev_index;
                meta.checking = 1;
                meta.bad = 0;
                if (hdr.ent[0].isValid()) { check_entry(hdr.ent[0].index, hdr.ent[0].flags, hdr.ent[0].replier, 0); }
                if (hdr.ent[1].isValid()) { check_entry(hdr.ent[1].index, hdr.ent[1].flags, hdr.ent[1].replier, 1); }
                if (hdr.ent[2].isValid()) { check_entry(hdr.ent[2].index, hdr.ent[2].flags, hdr.ent[2].replier, 2); }
                if (hdr.ent[3].isValid()) { check_entry(hdr.ent[3].index, hdr.ent[3].flags, hdr.ent[3].replier, 3); }
                if (hdr.ent[4].isValid()) { check_entry(hdr.ent[4].index, hdr.ent[4].flags, hdr.ent[4].replier, 4); }
                if (hdr.ent[5].isValid()) { check_entry(hdr.ent[5].index, hdr.ent[5].flags, hdr.ent[5].replier, 5); }
                if (hdr.ent[6].isValid()) { check_entry(hdr.ent[6].index, hdr.ent[6].flags, hdr.ent[6].replier, 6); }
                if (hdr.ent[7].isValid()) { check_entry(hdr.ent[7].index, hdr.ent[7].flags, hdr.ent[7].replier, 7); }
                if (hdr.ent[8].isValid()) { check_entry(hdr.ent[8].index, hdr.ent[8].flags, hdr.ent[8].replier, 8); }
                if (hdr.ent[9].isValid()) { check_entry(hdr.ent[9].index, hdr.ent[9].flags, hdr.ent[9].replier, 9); }
                if (hdr.ent[10].isValid()) { check_entry(hdr.ent[10].index, hdr.ent[10].flags, hdr.ent[10].replier, 10); }
                if (hdr.ent[11].isValid()) { check_entry(hdr.ent[11].index, hdr.ent[11].flags, hdr.ent[11].replier, 11); }
                if (hdr.ent[12].isValid()) { check_entry(hdr.ent[12].index, hdr.ent[12].flags, hdr.ent[12].replier, 12); }
                if (hdr.ent[13].isValid()) { check_entry(hdr.ent[13].index, hdr.ent[13].flags, hdr.ent[13].replier, 13); }
                if (hdr.ent[14].isValid()) { check_entry(hdr.ent[14].index, hdr.ent[14].flags, hdr.ent[14].replier, 14); }
                if (hdr.ent[15].isValid()) { check_entry(hdr.ent[15].index, hdr.ent[15].flags, hdr.ent[15].replier, 15); }
                if (hdr.ent[16].isValid()) { check_entry(hdr.ent[16].index, hdr.ent[16].flags, hdr.ent[16].replier, 16); }
                if (hdr.ent[17].isValid()) { check_entry(hdr.ent[17].index, hdr.ent[17].flags, hdr.ent[17].replier, 17); }
                if (hdr.ent[18].isValid()) { check_entry(hdr.ent[18].index, hdr.ent[18].flags, hdr.ent[18].replier, 18); }
                if (hdr.ent[19].isValid()) { check_entry(hdr.ent[19].index, hdr.ent[19].flags, hdr.ent[19].replier, 19); }
                if (hdr.ent[20].isValid()) { check_entry(hdr.ent[20].index, hdr.ent[20].flags, hdr.ent[20].replier, 20); }
                if (hdr.ent[21].isValid()) { check_entry(hdr.ent[21].index, hdr.ent[21].flags, hdr.ent[21].replier, 21); }
                if (hdr.ent[22].isValid()) { check_entry(hdr.ent[22].index, hdr.ent[22].flags, hdr.ent[22].replier, 22); }
                if (hdr.ent[23].isValid()) { check_entry(hdr.ent[23].index, hdr.ent[23].flags, hdr.ent[23].replier, 23); }
                if (hdr.ent[24].isValid()) { check_entry(hdr.ent[24].index, hdr.ent[24].flags, hdr.ent[24].replier, 24); }
                if (hdr.ent[25].isValid()) { check_entry(hdr.ent[25].index, hdr.ent[25].flags, hdr.ent[25].replier, 25); }
                if (hdr.ent[26].isValid()) { check_entry(hdr.ent[26].index, hdr.ent[26].flags, hdr.ent[26].replier, 26); }
                if (hdr.ent[27].isValid()) { check_entry(hdr.ent[27].index, hdr.ent[27].flags, hdr.ent[27].replier, 27); }
                if (hdr.ent[28].isValid()) { check_entry(hdr.ent[28].index, hdr.ent[28].flags, hdr.ent[28].replier, 28); }
                if (hdr.ent[29].isValid()) { check_entry(hdr.ent[29].index, hdr.ent[29].flags, hdr.ent[29].replier, 29); }
                if (meta.bad == 1) {
                    ok = false;
                }
                /* Every entry checked: nothing may follow them. */
                if (meta.checking == 1 && hdr.cnt.count <= MAX_ENTRIES
                        && (bit<32>)n != meta.need) {
                    ok = false;
                }
            }
        }
        /* AGG_COMMIT and AGG_PROBE_REP come from the aggregator (never accepted by it); other
         * types are unknown; a sender must be a member. */
        if (hdr.pfx.from >= meta.nodes) {
            ok = false;
        }
        if (!ok) {
            stats.count(C_MALFORMED);
            drop();
            exit;
        }

        bit<8> from = hdr.pfx.from;
        bit<64> term;
        bit<8> leader;
        bit<1> has;
        term_r.read(term, 0);
        leader_r.read(leader, 0);
        has_leader_r.read(has, 0);
        if (t == T_AGG_PROBE_REQ || t == T_AGG_AE_REQ) {
            /* Aggregator::adopt. */
            if (hdr.pfx.term > term) {
                flush(hdr.pfx.term, from);
            } else if (hdr.pfx.term < term || has == 0 || leader != from) {
                stats.count(C_STALE);
                drop();
                exit;
            }
            if (t == T_AGG_PROBE_REQ) {
                /* AGG_PROBE_REP with the probe's term, to the prober. */
                own_header(T_AGG_PROBE_REP);
                meta.udp_len = 26;
                meta.kind = K_PROBE_REP;
                standard_metadata.egress_spec = meta.mem_egress;
            } else {
                bit<64> last = hdr.ae.prev_index + (bit<64>)hdr.cnt.count;
                bit<64> mine;
                matched_r.read(mine, (bit<32>)from);
                if (last > mine) {
                    matched_r.write((bit<32>)from, last);
                } else {
                    /* Nothing new: the next answer brings an AGG_COMMIT. */
                    owed_r.write(0, 1);
                }
                term_start_r.write(0, hdr.ts.term_start);
                stats.count(C_RELAYED);
                /* The payload's sum, from the leader's checksum less its pseudo-header and
                 * UDP header (RFC 1624): the egress adds the new ones. */
                meta.psum = (bit<32>)(~hdr.udp.checksum)
                    + (bit<32>)(~hdr.ipv4.srcAddr[31:16]) + (bit<32>)(~hdr.ipv4.srcAddr[15:0])
                    + (bit<32>)(~hdr.ipv4.dstAddr[31:16]) + (bit<32>)(~hdr.ipv4.dstAddr[15:0])
                    + (bit<32>)(~(16w17)) + (bit<32>)(~hdr.udp.length)
                    + (bit<32>)(~hdr.udp.srcPort) + (bit<32>)(~hdr.udp.dstPort)
                    + (bit<32>)(~hdr.udp.length);
                meta.udp_len = hdr.udp.length;
                meta.leader = from;
                meta.kind = K_RELAY;
                standard_metadata.mcast_grp = meta.mgrp;
            }
        } else if (t == T_AE_REP) {
            if (hdr.rep.success == 0) {
                /* Failures go to the leader, never here. */
                stats.count(C_UNEXPECTED);
                drop();
                exit;
            }
            if (hdr.pfx.term != term || has == 0 || from == leader) {
                stats.count(C_STALE);
                drop();
                exit;
            }
            /* Aggregator::answer. Never beyond what the leader multicast. */
            bit<64> sent;
            bit<64> mine;
            bit<64> app;
            matched_r.read(sent, (bit<32>)leader);
            matched_r.read(mine, (bit<32>)from);
            applied_r.read(app, (bit<32>)from);
            bit<64> idx = hdr.rep.index < sent ? hdr.rep.index : sent;
            if (idx > mine) {
                matched_r.write((bit<32>)from, idx);
            }
            if (hdr.rep.applied > app) {
                applied_r.write((bit<32>)from, hdr.rep.applied);
            }
            bit<16> fresh;
            fresh_r.read(fresh, 0);
            fresh = fresh | ((bit<16>)1 << from);
            matched_r.read(meta.m0, 0);
            matched_r.read(meta.m1, 1);
            matched_r.read(meta.m2, 2);
            matched_r.read(meta.m3, 3);
            matched_r.read(meta.m4, 4);
            matched_r.read(meta.m5, 5);
            matched_r.read(meta.m6, 6);
            matched_r.read(meta.m7, 7);
            matched_r.read(meta.m8, 8);
            meta.maj = 0;
            consider(meta.m0, 0);
            consider(meta.m1, 1);
            consider(meta.m2, 2);
            consider(meta.m3, 3);
            consider(meta.m4, 4);
            consider(meta.m5, 5);
            consider(meta.m6, 6);
            consider(meta.m7, 7);
            consider(meta.m8, 8);
            bit<64> ts;
            bit<64> commit;
            bit<1> owed;
            term_start_r.read(ts, 0);
            commit_r.read(commit, 0);
            owed_r.read(owed, 0);
            bool advanced = meta.maj >= ts && meta.maj > commit;
            if (advanced) {
                commit = meta.maj;
                commit_r.write(0, commit);
            }
            if (!advanced && owed == 0) {
                fresh_r.write(0, fresh);
                drop();
                exit;
            }
            owed_r.write(0, 0);
            fresh_r.write(0, 0);
            stats.count(C_COMMITS);
            /* AGG_COMMIT: the AE_REP's headers become the aggregator's message. */
            own_header(T_AGG_COMMIT);
            hdr.rep.setInvalid();
            hdr.cm.setValid();
            hdr.cm.commit = commit;
            hdr.cm.fresh = fresh;
            hdr.cm.count = meta.nodes;
            sum64(commit);
            meta.psum = meta.psum + (bit<32>)fresh + (bit<32>)(meta.nodes ++ 8w0);
            bit<64> a0;
            bit<64> a1;
            bit<64> a2;
            bit<64> a3;
            bit<64> a4;
            bit<64> a5;
            bit<64> a6;
            bit<64> a7;
            bit<64> a8;
            applied_r.read(a0, 0);
            applied_r.read(a1, 1);
            applied_r.read(a2, 2);
            applied_r.read(a3, 3);
            applied_r.read(a4, 4);
            applied_r.read(a5, 5);
            applied_r.read(a6, 6);
            applied_r.read(a7, 7);
            applied_r.read(a8, 8);
            if (0 < meta.nodes) { hdr.prog[0].setValid(); hdr.prog[0].matched = meta.m0; hdr.prog[0].applied = a0; }
            if (1 < meta.nodes) { hdr.prog[1].setValid(); hdr.prog[1].matched = meta.m1; hdr.prog[1].applied = a1; }
            if (2 < meta.nodes) { hdr.prog[2].setValid(); hdr.prog[2].matched = meta.m2; hdr.prog[2].applied = a2; }
            if (3 < meta.nodes) { hdr.prog[3].setValid(); hdr.prog[3].matched = meta.m3; hdr.prog[3].applied = a3; }
            if (4 < meta.nodes) { hdr.prog[4].setValid(); hdr.prog[4].matched = meta.m4; hdr.prog[4].applied = a4; }
            if (5 < meta.nodes) { hdr.prog[5].setValid(); hdr.prog[5].matched = meta.m5; hdr.prog[5].applied = a5; }
            if (6 < meta.nodes) { hdr.prog[6].setValid(); hdr.prog[6].matched = meta.m6; hdr.prog[6].applied = a6; }
            if (7 < meta.nodes) { hdr.prog[7].setValid(); hdr.prog[7].matched = meta.m7; hdr.prog[7].applied = a7; }
            if (8 < meta.nodes) { hdr.prog[8].setValid(); hdr.prog[8].matched = meta.m8; hdr.prog[8].applied = a8; }
            /* The progress list starts at an odd payload offset (29): its words' sum enters
             * byte-swapped (RFC 1071, byte order independence). */
            meta.pacc = 0;
            progress(0, meta.m0, a0);
            progress(1, meta.m1, a1);
            progress(2, meta.m2, a2);
            progress(3, meta.m3, a3);
            progress(4, meta.m4, a4);
            progress(5, meta.m5, a5);
            progress(6, meta.m6, a6);
            progress(7, meta.m7, a7);
            progress(8, meta.m8, a8);
            meta.pacc = (meta.pacc & 0xffff) + (meta.pacc >> 16);
            meta.pacc = (meta.pacc & 0xffff) + (meta.pacc >> 16);
            meta.psum = meta.psum + (bit<32>)(meta.pacc[7:0] ++ meta.pacc[15:8]);
            meta.udp_len = 8 + 8 + 10 + 11 + 16 * (bit<16>)meta.nodes;
            meta.kind = K_COMMIT;
            standard_metadata.mcast_grp = meta.mgrp;
        } else {
            /* Well-formed, but nothing the aggregator takes. */
            stats.count(C_UNEXPECTED);
            drop();
            exit;
        }
        meta.psum = (meta.psum & 0xffff) + (meta.psum >> 16);
        meta.psum = (meta.psum & 0xffff) + (meta.psum >> 16);
    }
}

control AggEgress(inout headers_t hdr, inout metadata_t meta,
                  inout standard_metadata_t standard_metadata) {
    @id(11) action set_replica(bit<32> ip, bit<16> port, bit<48> mac) {
        meta.member_hit = 1;
        meta.mem_ip = ip;
        meta.mem_port = port;
        meta.mem_mac = mac;
    }
    @id(12) action no_replica() {
        meta.member_hit = 0;
    }
    /* Replica rid (= member id) -> the member's address. */
    @id(3) table replicas {
        key = { standard_metadata.egress_rid: exact; }
        actions = { set_replica; no_replica; }
        default_action = no_replica();
        size = 16;
    }
    @id(13) counter(1, CounterType.packets) no_route;

    apply {
        if (meta.kind == K_RELAY || meta.kind == K_COMMIT) {
            /* AllBut(leader) for a relay, All for an AGG_COMMIT. */
            if (meta.kind == K_RELAY && (bit<8>)standard_metadata.egress_rid == meta.leader) {
                mark_to_drop(standard_metadata);
                exit;
            }
            replicas.apply();
        }
        if (meta.member_hit == 0) {
            no_route.count(0);
            mark_to_drop(standard_metadata);
            exit;
        }
        /* A fresh Ethernet/IPv4/UDP header, as ferrix_net::stack::write_udp_frame writes it
         * (identification 0, DF, TTL 64). */
        hdr.eth.dstAddr = meta.mem_mac;
        hdr.eth.srcAddr = meta.agg_mac;
        hdr.eth.etherType = ETHERTYPE_IPV4;
        hdr.ipv4.version = 4;
        hdr.ipv4.ihl = 5;
        hdr.ipv4.diffserv = 0;
        hdr.ipv4.totalLen = meta.udp_len + 20;
        hdr.ipv4.identification = 0;
        hdr.ipv4.flags = 2;
        hdr.ipv4.fragOffset = 0;
        hdr.ipv4.ttl = 64;
        hdr.ipv4.protocol = IPPROTO_UDP;
        hdr.ipv4.srcAddr = meta.agg_ip;
        hdr.ipv4.dstAddr = meta.mem_ip;
        hdr.udp.srcPort = meta.agg_port;
        hdr.udp.dstPort = meta.mem_port;
        hdr.udp.length = meta.udp_len;
        /* A relayed datagram without a checksum keeps none. */
        if (meta.kind != K_RELAY || hdr.udp.checksum != 0) {
            bit<32> s = meta.psum
                + (bit<32>)meta.agg_ip[31:16] + (bit<32>)meta.agg_ip[15:0]
                + (bit<32>)meta.mem_ip[31:16] + (bit<32>)meta.mem_ip[15:0]
                + 17 + (bit<32>)meta.udp_len
                + (bit<32>)meta.agg_port + (bit<32>)meta.mem_port + (bit<32>)meta.udp_len;
            s = (s & 0xffff) + (s >> 16);
            s = (s & 0xffff) + (s >> 16);
            bit<16> c = ~s[15:0];
            hdr.udp.checksum = c == 0 ? 16w0xffff : c;
        }
        /* Nothing after the datagram (Ethernet padding of the input). */
        truncate((bit<32>)meta.udp_len + 34);
    }
}

control AggComputeChecksum(inout headers_t hdr, inout metadata_t meta) {
    apply {
        update_checksum(hdr.ipv4.isValid(),
            { hdr.ipv4.version, hdr.ipv4.ihl, hdr.ipv4.diffserv, hdr.ipv4.totalLen,
              hdr.ipv4.identification, hdr.ipv4.flags, hdr.ipv4.fragOffset, hdr.ipv4.ttl,
              hdr.ipv4.protocol, hdr.ipv4.srcAddr, hdr.ipv4.dstAddr },
            hdr.ipv4.hdrChecksum, HashAlgorithm.csum16);
    }
}

control AggDeparser(packet_out pkt, in headers_t hdr) {
    apply {
        pkt.emit(hdr.eth);
        pkt.emit(hdr.ipv4);
        pkt.emit(hdr.udp);
        pkt.emit(hdr.r2p2);
        pkt.emit(hdr.pfx);
        pkt.emit(hdr.rep);
        pkt.emit(hdr.flag);
        pkt.emit(hdr.ae);
        pkt.emit(hdr.ts);
        pkt.emit(hdr.cnt);
        pkt.emit(hdr.snap);
        pkt.emit(hdr.ent);
        pkt.emit(hdr.cm);
        pkt.emit(hdr.prog);
    }
}

V1Switch(AggParser(), AggVerifyChecksum(), AggIngress(), AggEgress(), AggComputeChecksum(),
         AggDeparser()) main;
