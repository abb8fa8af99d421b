-- R2P2 (Request-Response Pair Protocol) dissector for Wireshark / tshark 4.0 and later.
--
-- Wire format: shared/spec/r2p2.md (the reference implementation, EPFL DCSL `r2p2`) and the
-- ferrix extensions documented in net/src/r2p2/mod.rs (the twin of the spec's type table):
-- message type 8 SACK (net/src/r2p2/sack.rs) and the FEEDBACK fields `u32 n, u64 served`
-- appended after the reference body (net/src/r2p2/server.rs `feedback_body`).
--
-- Registered on the UDP ports of the preference "ports" (default: the servers' 8000+queue,
-- the synthetic app's shared port 8100, the router's FEEDBACK port 9000 and the guest client's
-- port 9100) and as a heuristic dissector for every other UDP port (magic 0xCC plus a
-- plausible header). Multi-packet messages are reassembled in a Lua table keyed as the spec
-- keys them: (client IP, client UDP port, rid), plus the message type, so a request and its
-- reply are two messages. Packets may come in any order, twice, or never.
--
-- Install: tools/wireshark/README.md.

local r2p2 = Proto("r2p2", "R2P2 (Request-Response Pair Protocol)")

local MAGIC = 0xCC
local HEADER_LEN = 8
local FLAG_FIRST = 0x80
local FLAG_LAST = 0x40

local T_REQUEST, T_RESPONSE, T_FEEDBACK, T_SACK = 0, 1, 2, 8
local FEEDBACK_REF_LEN = 8   -- u16 rid, u16 client port, u32 client IP
local FEEDBACK_EXT_LEN = 20  -- + (ext) u32 n, u64 served
local SACK_NO_TAIL = 0xFFFF

local type_names = {
    [0] = "REQUEST", [1] = "RESPONSE", [2] = "FEEDBACK", [3] = "ACK", [4] = "DROP",
    [5] = "RAFT_REQ", [6] = "RAFT_REP", [7] = "RAFT_MSG", [8] = "SACK",
}
local policy_names = {
    [0] = "LB_ROUTE", [1] = "FIXED_ROUTE", [2] = "REPLICATED_ROUTE",
    [3] = "REPLICATED_ROUTE_NO_SE",
}

local f = {
    magic = ProtoField.uint8("r2p2.magic", "Magic", base.HEX),
    header_size = ProtoField.uint8("r2p2.header_size", "Header size", base.DEC),
    type = ProtoField.uint8("r2p2.type", "Message type", base.DEC, type_names, 0xF0),
    policy = ProtoField.uint8("r2p2.policy", "Policy", base.DEC, policy_names, 0x0F),
    flags = ProtoField.uint8("r2p2.flags", "Flags", base.HEX),
    first = ProtoField.bool("r2p2.flags.first", "F (first packet)", 8, nil, FLAG_FIRST),
    last = ProtoField.bool("r2p2.flags.last", "L (last packet)", 8, nil, FLAG_LAST),
    unused = ProtoField.uint8("r2p2.flags.unused", "Unused flag bits", base.HEX, nil, 0x3F),
    rid = ProtoField.uint16("r2p2.rid", "Request id", base.DEC),
    p_order = ProtoField.uint16("r2p2.p_order", "Packet order", base.DEC),
    packets = ProtoField.uint16("r2p2.packets", "Packets in message", base.DEC),
    index = ProtoField.uint16("r2p2.index", "Packet index", base.DEC),
    header_ext = ProtoField.bytes("r2p2.header_ext", "Header bytes beyond 8"),
    payload = ProtoField.bytes("r2p2.payload", "Payload"),
    payload_len = ProtoField.uint32("r2p2.payload_len", "Payload length", base.DEC),
    fb_rid = ProtoField.uint16("r2p2.feedback.rid", "Completed rid", base.DEC),
    fb_port = ProtoField.uint16("r2p2.feedback.client_port", "Client port", base.DEC),
    fb_ip = ProtoField.ipv4("r2p2.feedback.client_ip", "Client IP"),
    fb_heartbeat = ProtoField.bool("r2p2.feedback.heartbeat", "Heartbeat (completes no request)"),
    fb_n = ProtoField.uint32("r2p2.feedback.n", "Server bound n (ext)", base.DEC),
    fb_served = ProtoField.uint64("r2p2.feedback.served", "Requests served (ext)", base.DEC),
    fb_extra = ProtoField.bytes("r2p2.feedback.extra", "Further FEEDBACK bytes"),
    sack_tail = ProtoField.uint16("r2p2.sack.tail_from", "Resend from index on", base.DEC,
        { [SACK_NO_TAIL] = "none" }),
    sack_index = ProtoField.uint16("r2p2.sack.index", "Resend index", base.DEC),
    reassembled_in = ProtoField.framenum("r2p2.reassembled_in", "Reassembled in frame",
        base.NONE, frametype.NONE),
    reassembled_len = ProtoField.uint32("r2p2.reassembled.length", "Reassembled length",
        base.DEC),
    reassembled_count = ProtoField.uint16("r2p2.reassembled.count", "Reassembled packets",
        base.DEC),
    fragment = ProtoField.framenum("r2p2.fragment", "Packet in frame", base.NONE,
        frametype.NONE),
    duplicate_of = ProtoField.framenum("r2p2.duplicate_of", "Duplicate of frame", base.NONE,
        frametype.NONE),
}
r2p2.fields = {
    f.magic, f.header_size, f.type, f.policy, f.flags, f.first, f.last, f.unused, f.rid,
    f.p_order, f.packets, f.index, f.header_ext, f.payload, f.payload_len, f.fb_rid, f.fb_port,
    f.fb_ip, f.fb_heartbeat, f.fb_n, f.fb_served, f.fb_extra, f.sack_tail, f.sack_index,
    f.reassembled_in, f.reassembled_len, f.reassembled_count, f.fragment, f.duplicate_of,
}

local e = {
    malformed = ProtoExpert.new("r2p2.malformed", "Malformed R2P2 packet",
        expert.group.MALFORMED, expert.severity.ERROR),
    unknown_type = ProtoExpert.new("r2p2.unknown_type", "Unassigned message type",
        expert.group.PROTOCOL, expert.severity.WARN),
    unknown_policy = ProtoExpert.new("r2p2.unknown_policy", "Unassigned policy",
        expert.group.PROTOCOL, expert.severity.WARN),
    duplicate = ProtoExpert.new("r2p2.duplicate", "Packet already received",
        expert.group.SEQUENCE, expert.severity.NOTE),
    inconsistent = ProtoExpert.new("r2p2.inconsistent", "Packet contradicts its message",
        expert.group.SEQUENCE, expert.severity.WARN),
}
r2p2.experts = { e.malformed, e.unknown_type, e.unknown_policy, e.duplicate, e.inconsistent }

local DEFAULT_PORTS = "8000-8015,8100,9000,9100"
r2p2.prefs.ports = Pref.range("UDP ports", DEFAULT_PORTS,
    "UDP ports decoded as R2P2 (servers 8000+queue, shared port 8100, router FEEDBACK 9000, "
    .. "guest client 9100); other ports are tried by the heuristic", 65535)
r2p2.prefs.heuristic = Pref.bool("Heuristic on other UDP ports", true,
    "Decode UDP payloads on any port that start with magic 0xCC and a plausible header")
r2p2.prefs.reassemble = Pref.bool("Reassemble multi-packet messages", true,
    "Put multi-packet requests and replies together (keyed by client IP, port and rid)")

-- Reassembly state, rebuilt on every (re)dissection: `messages` maps a key to the message
-- being assembled; `frames` maps a frame number to what its packet did, so later passes
-- (and the GUI) show the same thing as the first.
local messages, frames = {}, {}

function r2p2.init()
    messages, frames = {}, {}
end

local function new_message()
    return { parts = {}, count = 0 }
end

-- Records packet `index` of message `key` (first pass only); returns the frame's record.
local function track(key, index, is_first, is_last, p_order, data, number)
    local m = messages[key]
    if m and is_first and m.parts[0] then
        -- A second first packet: a copy (e.g. the REQ0 a router forwards) if its bytes are
        -- the ones we have, else a new message under a reused rid.
        if not (tostring(m.parts[0].data) == tostring(data) and m.total == p_order) then
            m = nil
        end
    elseif m and m.done and not is_first and not m.parts[index] then
        m = nil
    end
    if not m then
        m = new_message()
        messages[key] = m
    end
    local rec = { key = key, msg = m, index = index }
    local bad = (is_first and (p_order == 0 or (p_order == 1) ~= is_last))
        or (not is_first and index == 0)
        or (is_first and m.total and m.total ~= p_order)
        or (is_last and not is_first and m.total and index + 1 ~= m.total)
    if is_first and not bad then
        m.total = p_order
    elseif is_last and not is_first and not m.total then
        m.total = index + 1
    end
    if m.total and index >= m.total then
        bad = true
    end
    if bad then
        rec.inconsistent = true
    elseif m.parts[index] then
        rec.duplicate_of = m.parts[index].frame
    else
        m.parts[index] = { frame = number, data = data }
        m.count = m.count + 1
        if m.total and m.count == m.total and not m.done then
            local whole = ByteArray.new()
            for i = 0, m.total - 1 do
                whole:append(m.parts[i].data)
            end
            m.done, m.whole = number, whole
        end
    end
    frames[number] = rec
    return rec
end

-- Shows what reassembly knows about this frame's packet.
local function show_reassembly(rec, tree, pinfo)
    local m = rec.msg
    if rec.inconsistent then
        tree:add_proto_expert_info(e.inconsistent)
    elseif rec.duplicate_of then
        tree:add(f.duplicate_of, rec.duplicate_of):set_generated()
        tree:add_proto_expert_info(e.duplicate)
    end
    if not m.done then
        return
    end
    if pinfo.number ~= m.done then
        tree:add(f.reassembled_in, m.done):set_generated()
        return
    end
    local whole = m.whole:tvb("Reassembled R2P2")
    local sub = tree:add(f.reassembled_len, whole(), whole:len())
    sub:set_generated()
    sub:add(f.reassembled_count, m.total):set_generated()
    for i = 0, m.total - 1 do
        sub:add(f.fragment, m.parts[i].frame):set_generated()
    end
    pinfo.cols.info:append(string.format(" [reassembled %d bytes, %d packets]", whole:len(),
        m.total))
end

local function malformed(tree, pinfo, why)
    tree:add_proto_expert_info(e.malformed, "Malformed R2P2 packet: " .. why)
    pinfo.cols.info:set("Malformed R2P2: " .. why)
end

local function dissect_feedback(body, tree, pinfo)
    local len = body and body:len() or 0
    if len < FEEDBACK_REF_LEN then
        malformed(tree, pinfo, string.format("FEEDBACK body of %d bytes, the reference's is %d",
            len, FEEDBACK_REF_LEN))
        return
    end
    tree:add(f.fb_rid, body(0, 2))
    tree:add(f.fb_port, body(2, 2))
    tree:add(f.fb_ip, body(4, 4))
    local heartbeat = body(2, 2):uint() == 0 and body(4, 4):uint() == 0
    tree:add(f.fb_heartbeat, heartbeat):set_generated()
    local info = heartbeat and " heartbeat"
        or string.format(" completes rid=%d of %s:%d", body(0, 2):uint(),
            tostring(body(4, 4):ipv4()), body(2, 2):uint())
    if len >= FEEDBACK_EXT_LEN then
        tree:add(f.fb_n, body(8, 4))
        tree:add(f.fb_served, body(12, 8))
        info = info .. string.format(" n=%d served=%s", body(8, 4):uint(),
            tostring(body(12, 8):uint64()))
        if len > FEEDBACK_EXT_LEN then
            tree:add(f.fb_extra, body(FEEDBACK_EXT_LEN))
        end
    elseif len > FEEDBACK_REF_LEN then
        tree:add(f.fb_extra, body(FEEDBACK_REF_LEN))
    end
    pinfo.cols.info:append(info)
end

local function dissect_sack(body, tree, pinfo)
    local len = body and body:len() or 0
    if len < 2 or len % 2 ~= 0 then
        malformed(tree, pinfo, string.format("SACK body of %d bytes (want 2 + 2k)", len))
        return
    end
    tree:add(f.sack_tail, body(0, 2))
    local listed = {}
    for off = 2, len - 2, 2 do
        tree:add(f.sack_index, body(off, 2))
        listed[#listed + 1] = tostring(body(off, 2):uint())
    end
    local tail = body(0, 2):uint()
    pinfo.cols.info:append(" wants [" .. table.concat(listed, ",") .. "]"
        .. (tail == SACK_NO_TAIL and "" or string.format(" + %d..", tail)))
end

local function dissect(tvb, pinfo, tree)
    -- `len`: bytes captured, all this reads; `rlen`: bytes on the wire, what is checked.
    local len, rlen = tvb:len(), tvb:reported_len()
    pinfo.cols.protocol = "R2P2"
    local t = tree:add(r2p2, tvb())
    if rlen < HEADER_LEN then
        malformed(t, pinfo, string.format("%d bytes, shorter than the 8-byte header", rlen))
        return len
    end
    if len < HEADER_LEN then
        t:append_text(" [header not captured]")
        return len
    end
    t:add(f.magic, tvb(0, 1))
    if tvb(0, 1):uint() ~= MAGIC then
        malformed(t, pinfo, string.format("magic 0x%02x, not 0xcc", tvb(0, 1):uint()))
        return len
    end
    local hs = tvb(1, 1):uint()
    t:add(f.header_size, tvb(1, 1))
    local mtype = bit32.rshift(tvb(2, 1):uint(), 4)
    local policy = bit32.band(tvb(2, 1):uint(), 0x0F)
    local ti = t:add(f.type, tvb(2, 1))
    if not type_names[mtype] then
        ti:add_proto_expert_info(e.unknown_type)
    end
    local pi = t:add(f.policy, tvb(2, 1))
    if not policy_names[policy] then
        pi:add_proto_expert_info(e.unknown_policy)
    end
    local flags = tvb(3, 1):uint()
    local ft = t:add(f.flags, tvb(3, 1))
    ft:add(f.first, tvb(3, 1))
    ft:add(f.last, tvb(3, 1))
    ft:add(f.unused, tvb(3, 1))
    local is_first = bit32.band(flags, FLAG_FIRST) ~= 0
    local is_last = bit32.band(flags, FLAG_LAST) ~= 0
    local rid = tvb(4, 2):uint()
    local p_order = tvb(6, 2):uint()
    t:add(f.rid, tvb(4, 2))
    t:add(f.p_order, tvb(6, 2))
    local index = is_first and 0 or p_order
    if is_first then
        t:add(f.packets, p_order):set_generated()
    end
    t:add(f.index, index):set_generated()

    local tname = type_names[mtype] or string.format("type %d", mtype)
    local info = string.format("%s rid=%d %s%s", tname, rid, is_first and "F" or "-",
        is_last and "L" or "-")
    if not (is_first and is_last and p_order == 1) then
        info = info .. (is_first and string.format(" packets=%d", p_order)
            or string.format(" index=%d", p_order))
    end
    pinfo.cols.info:set(info .. " " .. (policy_names[policy] or string.format("policy %d", policy)))
    t:append_text(string.format(", %s, rid %d", tname, rid))

    if hs < HEADER_LEN then
        malformed(t, pinfo, string.format("header size %d, below 8", hs))
        return len
    end
    if hs > rlen then
        malformed(t, pinfo, string.format("header size %d, packet only %d bytes", hs, rlen))
        return len
    end
    t:add(f.payload_len, rlen - hs):set_generated()
    if len < rlen then
        -- The capture's snap length cut the packet: what is missing is not malformed.
        t:append_text(string.format(" [captured %d of %d bytes]", len, rlen))
        pinfo.cols.info:append(" [truncated capture]")
        return len
    end
    if hs > HEADER_LEN then
        t:add(f.header_ext, tvb(HEADER_LEN, hs - HEADER_LEN))
    end
    -- nil for an empty payload (a zero-length range cannot start at the end of the packet)
    local body = len > hs and tvb(hs):tvb() or nil
    if body then
        t:add(f.payload, body())
    end
    if mtype == T_FEEDBACK then
        dissect_feedback(body, t, pinfo)
    elseif mtype == T_SACK then
        dissect_sack(body, t, pinfo)
    end

    local single = is_first and is_last and p_order == 1
    if r2p2.prefs.reassemble and not single then
        -- The client is the source of everything but replies (spec "Identity").
        local caddr, cport = tostring(pinfo.src), pinfo.src_port
        if mtype == T_RESPONSE then
            caddr, cport = tostring(pinfo.dst), pinfo.dst_port
        end
        local key = string.format("%s:%d:%d:%d", caddr, cport, rid, mtype)
        local rec = frames[pinfo.number]
        if not pinfo.visited and not rec then
            local data = body and body():bytes() or ByteArray.new()
            rec = track(key, index, is_first, is_last, p_order, data, pinfo.number)
        end
        -- A frame can carry a second R2P2 packet (inside an ICMP error): not this record's.
        if rec and rec.key == key then
            show_reassembly(rec, t, pinfo)
        end
    end
    return len
end

function r2p2.dissector(tvb, pinfo, tree)
    return dissect(tvb, pinfo, tree)
end

-- The heuristic: magic, a header size of at least 8 that fits, an assigned type and policy.
local function heuristic(tvb, pinfo, tree)
    if not r2p2.prefs.heuristic or tvb:len() < HEADER_LEN or tvb(0, 1):uint() ~= MAGIC then
        return false
    end
    local hs = tvb(1, 1):uint()
    local tp = tvb(2, 1):uint()
    if hs < HEADER_LEN or hs > tvb:len() or not type_names[bit32.rshift(tp, 4)]
        or not policy_names[bit32.band(tp, 0x0F)] then
        return false
    end
    dissect(tvb, pinfo, tree)
    return true
end
r2p2:register_heuristic("udp", heuristic)

local udp_ports = DissectorTable.get("udp.port")
local registered = nil

local function register_ports()
    local ports = r2p2.prefs.ports
    if ports == registered then
        return
    end
    if registered and registered ~= "" then
        udp_ports:remove(registered, r2p2)
    end
    if ports ~= "" then
        udp_ports:add(ports, r2p2)
    end
    registered = ports
end

function r2p2.prefs_changed()
    register_ports()
end

register_ports()
