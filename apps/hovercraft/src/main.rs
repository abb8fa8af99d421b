//! hovercraft: a replica of the ferrix key-value store, replicated with Raft (thesis
//! chapter 12, issue 14) as a ferrix guest. The Raft core is the `ferrix-raft` crate
//! (`apps/hovercraft/logic`); the state machine is `ferrix-kv` (one RESP command per R2P2
//! message, as apps/kv serves it); [`replica`] glues them to the network.
//!
//! Modes (`mode=`):
//! - `hover` (default), HovercRaft: clients send each request to the multicast `group`
//!   (default 224.123.123.123, port `port`, default 8000), so every replica receives it; the
//!   leader orders only its metadata, followers take the body from their pending set (or
//!   fetch it with RECOVERY_REQ), and the replier the leader picked for the entry (JBSQ over
//!   bounded reply queues, or round robin: `replier=`, `reply-bound=`) answers the client
//!   from its own address. Read-only requests (REPLICATED_ROUTE_NO_SE) run on the replier
//!   alone.
//! - `vanilla`, Raft: clients send to one replica; the leader replicates the request bytes
//!   and answers; another replica answers `-NOTLEADER <ip>` (or `unknown`).
//!
//! Arguments: `id=N` and `peers=IP,IP,...` (every member's address by id, this one's
//! included; 3, 5, 7 or 9), `mode=`, `group=`, `port=`, `raft-port=` (default 9100),
//! `replier=jbsq|rr`, `reply-bound=N`, `tick-us=` (default 1000), `election-ticks=` (150),
//! `heartbeat-ticks=` (20), `max-body=` (1024), `max-log=` (200000), `mem-mb=` (64), `seed=`,
//! `router=IP:PORT` (send FEEDBACK there after each reply: apps/router's flow control for a
//! group, `group=`), `aggregator=IP` (HovercRaft++: the `hover-agg` VM at IP, port `raft-port`,
//! fans the leader's AppendEntries out to `group` and announces commits; the leader falls
//! back to direct replication while it does not answer),
//! `exit-after=N` (exit 0 once the applied index reaches N), `idle-exit-ms=N` (exit 0 after N
//! ms without a client request or a newly applied entry, once there was one). One core serves (the Raft core is
//! sequential); the others idle.
//!
//! Console: `hovercraft: replica N of M ... ready` at start, `hovercraft: node N leads term T`
//! whenever it becomes leader (and `... follows in term T` when it stops), `... replicates
//! through the aggregator in term T` and `... falls back to direct replication in term T` as
//! a HovercRaft++ leader switches, one summary at exit.
#![no_std]
#![no_main]

extern crate alloc;

mod args;
mod disk;
mod replica;
mod report;

use ferrix::println;

fn main(core: usize) {
    if core != 0 {
        ferrix::idle();
    }
    let s = ferrix::or_exit("hovercraft", args::parse(ferrix::args()));
    let (durable, log) = match disk::DiskLog::open(s.raft.id, &s.peers) {
        None => {
            println!(
                "hovercraft: no disk: volatile state (a replica that crashes must not rejoin under its id; ferrix run --disk FILE)"
            );
            (ferrix_raft::Durable::default(), None)
        }
        Some(Err(e)) => {
            println!("hovercraft: {e}");
            ferrix::exit(1);
        }
        Some(Ok(o)) => {
            println!(
                "hovercraft: disk of {} sectors: replayed {} records: term {} vote {:?} log {} entries",
                o.sectors,
                o.records,
                o.durable.term,
                o.durable.vote,
                o.durable.log.last_index()
            );
            (o.durable, Some(o.log))
        }
    };
    let mut r = ferrix::or_exit("hovercraft", replica::Replica::new(&s, durable, log));
    let cfg = ferrix::or_exit("hovercraft", ferrix::net::config());
    let me = usize::from(s.raft.id);
    if s.peers.get(me) != Some(&cfg.ip) {
        println!(
            "hovercraft: id={me} names {} in peers=, but this VM is {}",
            s.peers
                .get(me)
                .map_or("nothing".into(), |p| alloc::format!("{p}")),
            cfg.ip
        );
        ferrix::exit(1);
    }
    for p in [s.port, s.raft_port] {
        if let Err(e) = ferrix::net::bind_udp(p) {
            println!("hovercraft: port {p}: {e}");
            ferrix::exit(1);
        }
    }
    let hover = s.raft.mode == ferrix_raft::Mode::Hover;
    if hover && let Err(e) = ferrix::net::join_group(s.group) {
        println!("hovercraft: {}: {e}", s.group);
        ferrix::exit(1);
    }
    println!(
        "hovercraft: replica {me} of {} at {}, {} mode, clients on {}:{}, raft on port {}, replier {:?} bound {}: ready",
        s.peers.len(),
        cfg.ip,
        match (hover, s.aggregator) {
            (true, Some(_)) => "hovercraft++",
            (true, None) => "hovercraft",
            (false, _) => "vanilla",
        },
        if hover { s.group } else { cfg.ip },
        s.port,
        s.raft_port,
        s.raft.replier,
        s.raft.reply_bound,
    );
    let (port, raft_port) = (s.port, s.raft_port);
    let mut next_tick = ferrix::time::now_ns().saturating_add(s.tick_ns);
    // The last time a client request came or an entry was applied (a vanilla follower sees
    // no client, only entries).
    let mut last_activity = 0u64;
    let mut agg_seen = (0u64, 0u64);
    loop {
        let before = (r.counters.requests, r.node().applied());
        let polled = ferrix::net::poll(|d, buf| {
            let dgram = buf.get(..d.len).unwrap_or_default();
            match d.dst.port() {
                p if p == raft_port => r.on_raft(d.src, dgram),
                p if p == port => r.on_client(d.src, dgram),
                _ => {}
            }
            None
        });
        ferrix::or_exit("hovercraft", polled);
        let now = ferrix::time::now_ns();
        if (r.counters.requests, r.node().applied()) != before {
            last_activity = now;
        }
        // Catch up at most a few ticks after a stall (a paused vCPU), not a burst of them.
        let mut ticks = 0;
        while now >= next_tick && ticks < 4 {
            r.tick();
            next_tick = next_tick.saturating_add(s.tick_ns);
            ticks += 1;
        }
        if now >= next_tick {
            next_tick = now.saturating_add(s.tick_ns);
        }
        if let Err(e) = r.flush() {
            println!("hovercraft: {e}: stopping");
            ferrix::exit(1);
        }
        if let Some((role, term)) = r.role_changed() {
            match role {
                ferrix_raft::Role::Leader => println!("hovercraft: node {me} leads term {term}"),
                _ => println!("hovercraft: node {me} follows in term {term}"),
            }
        }
        let st = r.node().stats();
        if (st.agg_switches, st.agg_fallbacks) != agg_seen {
            let term = r.node().term();
            if st.agg_switches > agg_seen.0 {
                println!("hovercraft: node {me} replicates through the aggregator in term {term}");
            }
            if st.agg_fallbacks > agg_seen.1 {
                println!("hovercraft: node {me} falls back to direct replication in term {term}");
            }
            agg_seen = (st.agg_switches, st.agg_fallbacks);
        }
        let applied = r.node().applied();
        let idle = s
            .idle_exit_ns
            .is_some_and(|d| last_activity != 0 && now.saturating_sub(last_activity) > d);
        if s.exit_after.is_some_and(|n| applied >= n) || idle {
            report::at_exit(&mut r);
            ferrix::exit(0);
        }
    }
}

ferrix::entry!(main);
