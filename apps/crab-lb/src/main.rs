//! crab-lb: the CRAB load balancer (thesis chapter 7) as a ferrix guest. The logic is
//! `ferrix-crab-lb` (`logic/`); this app drives the NIC's queue pairs raw from core 0: every
//! frame is handed to `Lb::handle`, rewritten in its receive buffer and sent back out of it
//! (zero copy), or freed.
//!
//! Arguments: `vip=IP` (the service address; the load balancer answers ARP for it), `port=N`
//! (the service's TCP port, default 80; 0: any), `backends=IP@MAC,IP@MAC,...` (the servers,
//! on the local segment: their MACs are given because the load balancer runs no ARP of its
//! own), `policy=rr|random|lc` (default rr), `report-port=N` (default 7001: backends' load
//! reports for `lc`), `seed=N`, `idle-exit-ms=N` (exit 0 after N ms without a frame for the
//! VIP, once one came). No `ferrix.ip` is needed: the VM has no address of its own.
//!
//! Console: `crab-lb: VIP ... ready`, and at exit the counters (`LbStats`), the frames sent
//! and freed, and the time per redirected SYN in `Lb::handle` (guest instructions under
//! `ferrix run --profile microvm-icount`).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::net::Ipv4Addr;
use ferrix::cmdline::{arg_port, arg_value};
use ferrix::println;
use ferrix_crab_lb::{Backend, Lb, LbConfig, Policy, Verdict};
use ferrix_net::MacAddr;
use ferrix_net::tcp::crab::{Segment, recompute_tcp_checksum};

fn parse_mac(s: &str) -> Option<MacAddr> {
    let b: Vec<u8> = s
        .split(':')
        .map(|h| u8::from_str_radix(h, 16).ok())
        .collect::<Option<_>>()?;
    Some(MacAddr(b.try_into().ok()?))
}

/// The settings, and the idle exit.
fn parse(mac: MacAddr) -> Result<(LbConfig, Option<u64>), String> {
    let mut cfg = LbConfig {
        vip: Ipv4Addr::UNSPECIFIED,
        port: 80,
        mac,
        report_port: 7001,
        backends: Vec::new(),
        policy: Policy::RoundRobin,
        seed: 1,
    };
    let mut idle = None;
    for a in ferrix::args() {
        let Some((k, v)) = a.split_once('=') else {
            return Err(alloc::format!("unknown argument {a:?} (want key=value)"));
        };
        match k {
            "vip" => cfg.vip = arg_value(k, v)?,
            "port" => cfg.port = arg_value(k, v)?,
            "report-port" => cfg.report_port = arg_port(k, v)?,
            "seed" => cfg.seed = arg_value(k, v)?,
            "policy" => {
                cfg.policy = Policy::parse(v).ok_or_else(|| {
                    alloc::format!("bad value for policy: {v:?} (rr, random or lc)")
                })?;
            }
            "backends" => {
                for b in v.split(',') {
                    let (ip, m) = b.split_once('@').ok_or_else(|| {
                        alloc::format!("bad value for backends: {b:?} (want IP@MAC)")
                    })?;
                    cfg.backends.push(Backend {
                        ip: arg_value(k, ip)?,
                        mac: parse_mac(m).ok_or_else(|| {
                            alloc::format!("bad value for backends: {m:?} is not a MAC")
                        })?,
                    });
                }
            }
            "idle-exit-ms" => idle = Some(arg_value::<u64>(k, v)?.saturating_mul(1_000_000)),
            _ => return Err(alloc::format!("unknown argument {a:?}")),
        }
    }
    if cfg.vip.is_unspecified() {
        return Err("vip= is missing".into());
    }
    Ok((cfg, idle))
}

fn main(core: usize) {
    if core != 0 {
        ferrix::idle();
    }
    let info = ferrix::net::info().unwrap_or_else(|| {
        println!("crab-lb: no NIC (ferrix run --net ...)");
        ferrix::exit(1)
    });
    let (cfg, idle_ns) = ferrix::or_exit("crab-lb", parse(MacAddr(info.mac)));
    let summary = alloc::format!(
        "crab-lb: VIP {}:{} over {} backends, policy {:?}",
        cfg.vip,
        cfg.port,
        cfg.backends.len(),
        cfg.policy
    );
    let mut lb = ferrix::or_exit("crab-lb", Lb::new(cfg));
    let mut qs: Vec<_> = (0..info.queue_pairs)
        .filter_map(ferrix::net::take_queue_of)
        .collect();
    if qs.is_empty() {
        println!("crab-lb: the NIC's queues are taken");
        ferrix::exit(1);
    }
    println!("{summary}: ready");
    let (mut rx, mut tx) = (Vec::with_capacity(32), Vec::with_capacity(32));
    let (mut sent, mut freed, mut tx_full) = (0u64, 0u64, 0u64);
    let mut last = 0u64;
    // Time in `Lb::handle` for redirected SYNs (instructions under `--profile microvm-icount`,
    // whose guest clock advances one per instruction).
    let (mut syn_ns, mut syns) = (0u64, 0u64);
    loop {
        let mut got = false;
        for q in qs.iter_mut() {
            q.rx_burst(&mut rx, 32);
            for mut p in rx.drain(..) {
                let t0 = ferrix::time::now_ns();
                let verdict = lb.handle(p.data_mut());
                if let Verdict::Redirect(_) = verdict {
                    syn_ns += ferrix::time::now_ns().saturating_sub(t0);
                    syns += 1;
                }
                match verdict {
                    Verdict::Redirect(_) | Verdict::Fallback(_) => {
                        got = true;
                        // A checksum the NIC called good may be partial (a sender on this
                        // host): the next hop must get a complete one.
                        if p.l4_checksum_ok()
                            && let Some(s) = Segment::parse(p.data())
                        {
                            recompute_tcp_checksum(p.data_mut(), &s);
                        }
                        tx.push(p);
                    }
                    Verdict::Reply => {
                        got = true;
                        tx.push(p);
                    }
                    Verdict::Consumed | Verdict::Dropped => {
                        got = true;
                        freed += 1;
                        q.free(p);
                    }
                    Verdict::NotForUs => {
                        freed += 1;
                        q.free(p);
                    }
                }
            }
            sent += q.tx_burst(&mut tx) as u64;
            for p in tx.drain(..) {
                tx_full += 1;
                q.free(p);
            }
        }
        let now = ferrix::time::now_ns();
        if got {
            last = now;
        }
        if idle_ns.is_some_and(|d| last != 0 && now.saturating_sub(last) > d) {
            println!("crab-lb: exit: {:?}", lb.stats());
            println!("crab-lb: frames sent {sent} freed {freed} tx_full {tx_full}");
            println!("crab-lb: loads {:?}", lb.loads());
            println!(
                "crab-lb: {} ns per redirected SYN in handle over {syns} SYNs",
                syn_ns.checked_div(syns).unwrap_or(0)
            );
            ferrix::exit(0);
        }
    }
}

ferrix::entry!(main);
