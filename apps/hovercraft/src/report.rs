//! The summary printed at exit (tests read these lines by their `key value` pairs).

use crate::replica::Replica;
use ferrix::println;

/// Prints the replica's state and counters.
pub fn at_exit(r: &mut Replica) {
    let failures = r.send_failures();
    let n = r.node();
    let log = n.log();
    println!(
        "hovercraft: exit: node {} role {:?} term {} commit {} applied {} log {} pending {}",
        n.id(),
        n.role(),
        n.term(),
        n.commit(),
        n.applied(),
        log.last_index() - log.snapshot().index,
        n.pending_len(),
    );
    let c = &r.counters;
    println!(
        "hovercraft: requests {} executed {} replies {} redirects {} refused policy {} read_only_writes {} too_large {} multi_packet {} log_full {}",
        c.requests,
        c.executed,
        c.replies,
        c.redirects,
        c.wrong_policy,
        c.read_only_writes,
        c.too_large,
        c.multi_packet,
        c.log_full,
    );
    println!(
        "hovercraft: raft in {} out {} refused {} agg_echo {} send_failed {failures} writes {} records {} disk_sectors {} snapshots_refused {}",
        c.raft_in,
        c.raft_out,
        c.raft_refused,
        c.agg_echo,
        c.writes,
        c.records,
        r.disk_used().unwrap_or(0),
        c.snapshots_refused,
    );
    let (items, bytes, evictions) = r.store_totals();
    println!("hovercraft: store items {items} bytes {bytes} evictions {evictions}");
    println!("hovercraft: core {:?}", r.node().stats());
    println!("hovercraft: r2p2 {:?}", r.r2p2_stats());
}
