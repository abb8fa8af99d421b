//! HovercRaft in guests: three replicas of the key-value store (apps/hovercraft) on one Linux
//! bridge inside a namespace the test creates, and a Linux client in that namespace (nothing
//! is sent from the root namespace):
//!
//! ```text
//!   hover-client (10.79.0.1, the bridge) --REQUEST--> 224.123.123.123:8000 (multicast)
//!        ^                                   |  every replica gets it; the leader orders
//!        |                                   v  its metadata over raft-port 9100
//!        +------- RESPONSE from the replier ---- replicas 10.79.0.10, .11, .12
//! ```
//!
//! Checked (HovercRaft mode): the replicas' IGMP reports put each of their bridge ports in
//! the group (`bridge mdb`), every write and read-back succeeds, replies come from more than
//! one replica (load-balanced repliers), the leader is killed and a new one is elected, the
//! writes acknowledged before the kill are all read back after it, and the two survivors end
//! with the same applied index and the same store. Vanilla Raft mode: the same client through
//! redirects to the leader. Flow control: an R2P2 router VM in front of the group
//! (apps/router `group=`) forwards the client's requests to the multicast group while fewer
//! than 4 are unanswered (the repliers' FEEDBACK completes them) and answers a flood beyond
//! that with DROP, every request answered exactly once. HovercRaft++: an aggregator VM
//! (apps/hover-agg, 10.79.0.3) relays the leader's AppendEntries by multicast; it is killed
//! and restarted (the leader falls back and switches again), then the leader is killed.

use ferrix_tests::netns::{NetNs, unavailable};
use ferrix_tests::vm::{LiveVm, Tap};
use std::path::{Path, PathBuf};
use std::time::Duration;

const FERRIX: &str = env!("CARGO_BIN_EXE_ferrix-in-test");
const CLIENT: &str = env!("CARGO_BIN_EXE_hover-client");
const GROUP: &str = "224.123.123.123";
const PEERS: &str = "peers=10.79.0.10,10.79.0.11,10.79.0.12";

fn topology() -> Option<NetNs> {
    topology_with(3)
}

fn topology_with(taps: usize) -> Option<NetNs> {
    if let Some(why) = unavailable() {
        eprintln!("skipping: {why}");
        return None;
    }
    let ns = NetNs::create();
    ns.segment("hb0", "10.79.0.1/24", "ht", taps);
    // The client's multicast leaves through the bridge.
    ns.run(&["ip", "route", "add", "224.0.0.0/4", "dev", "hb0"]);
    Some(ns)
}

/// Boots `app` (one vCPU) on TAP `tap` with `mac`, the ferrix options `opts` and kernel
/// arguments `args`; waits for `ready` on its console.
fn vm(
    ns: &NetNs,
    app: &str,
    (tap, mac): (&str, &str),
    opts: &[&str],
    args: &[&str],
    ready: &str,
) -> LiveVm {
    LiveVm::on_tap(
        FERRIX,
        Tap { ns, dev: tap, mac },
        app,
        (opts, args),
        ready,
        Duration::from_secs(120),
    )
}

fn replica(ns: &NetNs, i: usize, extra: &[&str]) -> LiveVm {
    replica_on(ns, i, None, extra)
}

/// Replica `i`, with its log on `disk` if given.
fn replica_on(ns: &NetNs, i: usize, disk: Option<&Path>, extra: &[&str]) -> LiveVm {
    let ip = format!("ferrix.ip=10.79.0.1{i}/24");
    let id = format!("id={i}");
    let mut args = vec![ip.as_str(), &id, PEERS];
    args.extend_from_slice(extra);
    let mac = format!("52:54:00:79:00:1{i}");
    let disk = disk.map(|d| d.to_string_lossy().into_owned());
    let opts: Vec<&str> = match &disk {
        Some(d) => vec!["--disk", d],
        None => Vec::new(),
    };
    vm(
        ns,
        "hovercraft",
        (&format!("ht{i}"), &mac),
        &opts,
        &args,
        ": ready",
    )
}

/// A blank 16 MiB disk image for replica `i` of the test named `test`, removed when dropped.
struct Disk(PathBuf);

impl Disk {
    fn new(test: &str, i: usize) -> Disk {
        let p = std::env::temp_dir().join(format!(
            "ferrix-hover-{}-{test}-{i}.img",
            std::process::id()
        ));
        let f = std::fs::File::create(&p).expect("disk image");
        f.set_len(16 << 20).expect("disk size");
        Disk(p)
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The replica that leads the highest term seen in the consoles.
fn leader(vms: &[Option<LiveVm>]) -> Option<(usize, u64)> {
    let mut best: Option<(usize, u64)> = None;
    for (i, vm) in vms.iter().enumerate() {
        let Some(vm) = vm else { continue };
        for l in vm.console().lines() {
            let Some(rest) = l.strip_prefix(&format!("hovercraft: node {i} leads term ")) else {
                continue;
            };
            if let Ok(t) = rest.trim().parse::<u64>()
                && best.is_none_or(|(_, b)| t > b)
            {
                best = Some((i, t));
            }
        }
    }
    best
}

fn wait_leader(vms: &[Option<LiveVm>], newer_than: u64) -> (usize, u64) {
    for _ in 0..600 {
        if let Some((i, t)) = leader(vms)
            && t > newer_than
        {
            return (i, t);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let consoles: Vec<String> = vms.iter().flatten().map(|v| v.console()).collect();
    panic!(
        "no leader after term {newer_than}:\n{}",
        consoles.join("\n")
    );
}

fn client(ns: &NetNs, dest: &str, first: u64, last: u64, extra: &[&str]) -> String {
    let (f, l) = (first.to_string(), last.to_string());
    let mut argv = vec![CLIENT, dest, &f, &l];
    argv.extend_from_slice(extra);
    let out = ns.command(&argv).output().expect("hover-client");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "client {first}..{last}: {text}");
    text
}

fn field(text: &str, line_start: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(line_start))?;
    let mut words = line.split_whitespace();
    words.find(|w| *w == key)?;
    words.next()?.parse().ok()
}

/// Distinct replicas in the client's `repliers IP=N ...`.
fn repliers(out: &str) -> usize {
    out.lines()
        .find_map(|l| l.split_once(" repliers "))
        .map_or(0, |(_, r)| r.split_whitespace().count())
}

#[test]
fn hovercraft_survives_the_leader_and_balances_replies() {
    let Some(ns) = topology() else { return };
    let idle = "idle-exit-ms=8000";
    let disks: Vec<Disk> = (0..3).map(|i| Disk::new("kill", i)).collect();
    let mut vms: Vec<Option<LiveVm>> = (0..3)
        .map(|i| Some(replica_on(&ns, i, Some(&disks[i].0), &[idle])))
        .collect();
    let (l1, t1) = wait_leader(&vms, 0);
    // Every replica's bridge port is in the group: their IGMP reports arrived.
    let mdb = ns.run(&["bridge", "mdb", "show", "dev", "hb0"]);
    let mdb = String::from_utf8_lossy(&mdb.stdout);
    for i in 0..3 {
        assert!(
            mdb.lines()
                .any(|l| l.contains(&format!("port ht{i} ")) && l.contains(GROUP)),
            "ht{i} not in {GROUP}:\n{mdb}"
        );
    }
    let dest = format!("{GROUP}:8000");
    let out1 = client(&ns, &dest, 0, 100, &[]);
    eprintln!("{out1}");
    assert!(repliers(&out1) >= 2, "one replier only: {out1}");
    // Kill the leader; the other two elect a new one and keep every acknowledged write.
    let dead = vms[l1].take().map(LiveVm::kill).unwrap_or_default();
    let (l2, t2) = wait_leader(&vms, t1);
    assert_ne!(l1, l2);
    let out2 = client(&ns, &dest, 100, 160, &[]);
    eprintln!("{out2}");
    // The old leader comes back from its disk: it replays its term and log, follows the new
    // leader and catches up; then a third run goes through all three.
    let back = replica_on(&ns, l1, Some(&disks[l1].0), &[idle]);
    assert!(
        back.console().contains("hovercraft: disk of ")
            && !back.console().contains("replayed 0 records"),
        "{}",
        back.console()
    );
    vms[l1] = Some(back);
    let out3 = client(&ns, &dest, 160, 200, &[]);
    eprintln!("{out3}");
    let mut finals = Vec::new();
    for (i, vm) in vms.into_iter().enumerate() {
        let Some(vm) = vm else { continue };
        let (status, console) = vm.finish(Duration::from_secs(60));
        eprintln!("replica {i}:\n{console}");
        assert!(
            status.is_some_and(|s| s.success()),
            "replica {i}: {status:?}"
        );
        finals.push(console);
    }
    eprintln!("killed leader {l1} (term {t1}):\n{dead}");
    assert_eq!(finals.len(), 3);
    let applied: Vec<Option<u64>> = finals
        .iter()
        .map(|c| field(c, "hovercraft: exit:", "applied"))
        .collect();
    assert!(
        applied[0].is_some() && applied.iter().all(|a| *a == applied[0]),
        "{applied:?}"
    );
    // 200 writes and 200 reads ordered, plus the leaders' no-ops, at least.
    assert!(applied[0].unwrap_or(0) >= 400, "{applied:?}");
    for c in &finals {
        assert!(
            field(c, "hovercraft: raft", "records").unwrap_or(0) > 0,
            "{c}"
        );
    }
    for c in &finals {
        assert_eq!(field(c, "hovercraft: store", "items"), Some(16), "{c}");
        assert_eq!(field(c, "hovercraft: store", "evictions"), Some(0), "{c}");
        assert_eq!(field(c, "hovercraft: raft", "refused"), Some(0), "{c}");
    }
    assert!(t2 > t1);
}

/// The HovercRaft++ aggregator VM (apps/hover-agg) at 10.79.0.3 on TAP ht3.
fn aggregator(ns: &NetNs) -> LiveVm {
    vm(
        ns,
        "hover-agg",
        ("ht3", "52:54:00:79:00:03"),
        &[],
        &["ferrix.ip=10.79.0.3/24", PEERS, "idle-exit-ms=8000"],
        "hover-agg: 3 members",
    )
}

/// `name: N` in a `Debug`-printed struct on the line starting with `line_start`.
fn debug_field(text: &str, line_start: &str, name: &str) -> Option<u64> {
    let line = text.lines().rev().find(|l| l.starts_with(line_start))?;
    let (_, rest) = line.split_once(&format!(" {name}: "))?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// HovercRaft++: the aggregator VM relays the leader's AppendEntries by multicast and
/// announces commits. Killing it makes the leader fall back to direct replication without
/// losing a request; a restarted (empty) aggregator is probed and used again; killing the
/// leader elects a new one, which switches to the aggregator in its term; the old leader
/// restarts from its disk and catches up.
#[test]
fn hovercraft_plus_survives_the_aggregator_and_the_leader() {
    let Some(ns) = topology_with(4) else { return };
    let extra = ["aggregator=10.79.0.3", "idle-exit-ms=8000"];
    let disks: Vec<Disk> = (0..3).map(|i| Disk::new("plus", i)).collect();
    let mut agg = Some(aggregator(&ns));
    let mut vms: Vec<Option<LiveVm>> = (0..3)
        .map(|i| Some(replica_on(&ns, i, Some(&disks[i].0), &extra)))
        .collect();
    let (l1, t1) = wait_leader(&vms, 0);
    let dest = format!("{GROUP}:8000");
    eprintln!("{}", client(&ns, &dest, 0, 60, &[]));
    // The aggregator goes: the leader falls back and keeps committing.
    let agg1 = agg.take().map(LiveVm::kill).unwrap_or_default();
    eprintln!("aggregator before its kill:\n{agg1}");
    assert!(agg1.contains(": ready"), "{agg1}");
    eprintln!("{}", client(&ns, &dest, 60, 100, &[]));
    // An empty aggregator comes back: probed, used again.
    agg = Some(aggregator(&ns));
    let back = format!("hovercraft: node {l1} replicates through the aggregator in term {t1}");
    let leader = vms[l1].as_ref().expect("running");
    let start = std::time::Instant::now();
    while leader.console().matches(&back).count() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{}",
            leader.console()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("{}", client(&ns, &dest, 100, 140, &[]));
    // The leader goes: a new one in a new term, through the aggregator again.
    let dead = vms[l1].take().map(LiveVm::kill).unwrap_or_default();
    let (l2, t2) = wait_leader(&vms, t1);
    assert_ne!(l1, l2);
    eprintln!("{}", client(&ns, &dest, 140, 180, &[]));
    vms[l1] = Some(replica_on(&ns, l1, Some(&disks[l1].0), &extra));
    eprintln!("{}", client(&ns, &dest, 180, 200, &[]));
    let mut finals = Vec::new();
    for (i, vm) in vms.into_iter().enumerate() {
        let (status, console) = vm.expect("running").finish(Duration::from_secs(60));
        eprintln!("replica {i}:\n{console}");
        assert!(status.is_some_and(|s| s.success()), "replica {i}");
        finals.push(console);
    }
    let (status, agg2) = agg.expect("running").finish(Duration::from_secs(60));
    eprintln!("aggregator:\n{agg2}\nkilled leader {l1} (term {t1}):\n{dead}");
    assert!(status.is_some_and(|s| s.success()), "aggregator");
    let applied: Vec<Option<u64>> = finals
        .iter()
        .map(|c| field(c, "hovercraft: exit:", "applied"))
        .collect();
    assert!(
        applied[0].unwrap_or(0) >= 400 && applied.iter().all(|a| *a == applied[0]),
        "{applied:?}"
    );
    for c in &finals {
        assert_eq!(field(c, "hovercraft: store", "items"), Some(16), "{c}");
        assert_eq!(field(c, "hovercraft: raft", "refused"), Some(0), "{c}");
    }
    // The first leader used the aggregator, fell back when it died, and used the second.
    let switched = |c: &str, i: usize, t: u64| {
        c.matches(&format!(
            "hovercraft: node {i} replicates through the aggregator in term {t}"
        ))
        .count()
    };
    assert!(switched(&dead, l1, t1) >= 2, "{dead}");
    assert!(
        dead.contains(&format!(
            "hovercraft: node {l1} falls back to direct replication in term {t1}"
        )),
        "{dead}"
    );
    // The second switched to it in its own term, and followers committed by its AGG_COMMITs.
    let core = "hovercraft: core";
    assert!(switched(&finals[l2], l2, t2) >= 1, "{}", finals[l2]);
    let follower = (0..3).find(|&i| i != l1 && i != l2).unwrap_or(0);
    assert!(debug_field(&finals[follower], core, "agg_commits").unwrap_or(0) >= 1);
    // The second aggregator relayed both leaders' terms, refused nothing.
    assert_eq!(
        field(&agg2, "hover-agg: datagrams", "refused"),
        Some(0),
        "{agg2}"
    );
    assert!(
        field(&agg2, "hover-agg: datagrams", "multicast").unwrap_or(0) >= 20,
        "{agg2}"
    );
    assert!(
        debug_field(&agg2, "hover-agg: core", "relayed").unwrap_or(0) >= 20,
        "{agg2}"
    );
    assert!(
        debug_field(&agg2, "hover-agg: core", "flushes").unwrap_or(0) >= 2,
        "{agg2}"
    );
    assert!(t2 > t1);
}

/// Datagrams [`HOSTILE_PY`] sends to the Raft port.
const HOSTILE_RAFT: u64 = 41;

/// `python3 -c HOSTILE_PY IP`: 20 random datagrams and 20 forged RAFT_REQ AppendEntries
/// (from_id 1, term 99, from this host) and one empty datagram to IP:9100, 20 random
/// datagrams to IP:8000 (none starts with R2P2's magic).
const HOSTILE_PY: &str = r#"
import os, socket, struct, sys
ip = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(20):
    junk = bytes([0x00]) + os.urandom(1 + i * 7)
    s.sendto(junk, (ip, 9100))
    s.sendto(junk, (ip, 8000))
    body = struct.pack(">BBQQQQH", 5, 1, 99, 0, 0, 0, 0)
    s.sendto(bytes([0xcc, 8, 0x51, 0xc0, 0, 0, 0, 1]) + body, (ip, 9100))
s.sendto(b"", (ip, 9100))
"#;

#[test]
fn vanilla_raft_redirects_to_the_leader() {
    let Some(ns) = topology() else { return };
    let args = ["mode=vanilla", "idle-exit-ms=3000"];
    let vms: Vec<Option<LiveVm>> = (0..3).map(|i| Some(replica(&ns, i, &args))).collect();
    let (l, _) = wait_leader(&vms, 0);
    // Hostile input at the leader first: junk and a forged AppendEntries (a member's id from
    // the client's address) to the Raft port, junk to the client port. Refused and counted;
    // the cluster keeps serving.
    let leader_ip = format!("10.79.0.1{l}");
    ns.run(&["python3", "-c", HOSTILE_PY, &leader_ip]);
    // Start at a follower: its -NOTLEADER answer names the leader.
    let follower = (l + 1) % 3;
    let dest = format!("10.79.0.1{follower}:8000");
    let out = client(&ns, &dest, 0, 40, &["--vanilla"]);
    eprintln!("{out}");
    assert_eq!(repliers(&out), 1, "the leader answers alone: {out}");
    assert!(out.contains(&format!("10.79.0.1{l}=")), "{out}");
    let mut applied = Vec::new();
    for (i, vm) in vms.into_iter().enumerate() {
        let (status, console) = vm.expect("running").finish(Duration::from_secs(60));
        assert!(
            status.is_some_and(|s| s.success()),
            "replica {i}:\n{console}"
        );
        applied.push(field(&console, "hovercraft: exit:", "applied"));
        if i == l {
            assert_eq!(
                field(&console, "hovercraft: raft", "refused"),
                Some(HOSTILE_RAFT),
                "{console}"
            );
            assert!(console.contains("bad_header: 20,"), "{console}");
        }
        if i == follower {
            assert!(
                field(&console, "hovercraft: requests", "redirects").unwrap_or(0) >= 1,
                "{console}"
            );
        }
    }
    assert!(
        applied
            .iter()
            .all(|a| *a == applied[0] && a.unwrap_or(0) >= 80),
        "{applied:?}"
    );
}

#[test]
fn a_router_bounds_the_requests_in_the_group() {
    let Some(ns) = topology_with(4) else { return };
    let router_args = [
        "ferrix.ip=10.79.0.2/24",
        "group=224.123.123.123:8000",
        "group-max=4",
        "idle-exit-ms=6000",
    ];
    let router = vm(
        &ns,
        "router",
        ("ht3", "52:54:00:79:00:02"),
        &[],
        &router_args,
        "router: routing",
    );
    let extra = ["router=10.79.0.2:9000", "idle-exit-ms=6000"];
    let vms: Vec<Option<LiveVm>> = (0..3).map(|i| Some(replica(&ns, i, &extra))).collect();
    wait_leader(&vms, 0);
    let out = client(&ns, "10.79.0.2:8000", 0, 30, &[]);
    eprintln!("{out}");
    let out = ns
        .command(&[CLIENT, "10.79.0.2:8000", "--flood", "48"])
        .output()
        .expect("hover-client --flood");
    let flood =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    eprintln!("{flood}");
    assert!(out.status.success(), "{flood}");
    let drops = field(&flood, "hover-client: flood", "drops").unwrap_or(0);
    let replies = field(&flood, "hover-client: flood", "replies").unwrap_or(0);
    assert!(drops >= 1 && replies >= 4, "{flood}");
    let (status, console) = router.finish(Duration::from_secs(60));
    eprintln!("{console}");
    assert!(status.is_some_and(|s| s.success()), "router: {status:?}");
    let g = "router: group";
    assert_eq!(field(&console, g, "refused"), Some(drops), "{console}");
    assert_eq!(
        field(&console, g, "admitted"),
        Some(60 + replies),
        "{console}"
    );
    // Every admitted request was answered and its FEEDBACK came back (none expired).
    assert_eq!(
        field(&console, g, "completed"),
        Some(60 + replies),
        "{console}"
    );
    assert_eq!(field(&console, g, "in_system"), Some(0), "{console}");
    assert_eq!(
        field(&console, "router: stats", "servers_joined"),
        None,
        "{console}"
    );
    for vm in vms.into_iter().flatten() {
        let (status, console) = vm.finish(Duration::from_secs(60));
        assert!(status.is_some_and(|s| s.success()), "{console}");
    }
}
