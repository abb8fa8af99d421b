//! Running a SLOG experiment in p4sim: the trigger's passes one slot apart in time
//! ([`Experiment::slot`]), replies injected between them ([`Experiment::reply`]), and a
//! simulated device under test that echoes requests ([`echo`], [`run_with_dut`]) for
//! `p4sim slog`.

use super::ControlFile;
use super::slog::{Histogram, Plan, SlogConfig, SlogCounters, SlogError, counters};
use crate::error::PacketError;
use crate::externs::Rng;
use crate::switch::{Output, Recirculated, Switch};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// p4/slog.p4 in p4sim with a plan's entries, and the trigger between its passes.
#[derive(Clone)]
pub struct Experiment {
    pub sw: Switch,
    pub plan: Plan,
    /// The trigger waiting for its next slot (None before the start and after the end).
    trigger: Option<Recirculated>,
    /// The next slot's number.
    next: u64,
    t0_ns: u64,
}

/// A request that left the switch in a slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub slot: u64,
    pub port: u16,
    pub bytes: Vec<u8>,
}

impl Experiment {
    /// Loads slog.p4 with `plan`'s entries; the first slot will be at `t0_ns`.
    pub fn new(plan: Plan, seed: u64, t0_ns: u64) -> Result<Experiment, SlogError> {
        let cf = plan.control_file();
        Experiment::with_entries(plan, &cf, seed, t0_ns)
    }

    /// Loads slog.p4 with the entries of `cf` (a plan's, or a test's edit of them).
    pub fn with_entries(
        plan: Plan,
        cf: &ControlFile,
        seed: u64,
        t0_ns: u64,
    ) -> Result<Experiment, SlogError> {
        let mut sw = Switch::load(super::slog::SOURCE, seed)
            .map_err(|e| SlogError::Invalid(format!("slog.p4:{e}")))?;
        cf.install(&mut sw)
            .map_err(|e| SlogError::Invalid(e.to_string()))?;
        Ok(Experiment {
            sw,
            plan,
            trigger: None,
            next: 0,
            t0_ns,
        })
    }

    /// The time of slot `s`.
    pub fn slot_time(&self, s: u64) -> u64 {
        self.t0_ns + s * self.plan.slot_ns
    }

    /// The next slot's number (slots run so far).
    pub fn next_slot(&self) -> u64 {
        self.next
    }

    pub fn finished(&self) -> bool {
        self.next >= self.plan.slots
    }

    /// Runs the next slot (the first injects the trigger on the generator port): the request
    /// it sent, if any; None once every slot ran.
    pub fn slot(&mut self) -> Result<Option<Option<Sent>>, PacketError> {
        if self.finished() {
            return Ok(None);
        }
        let now = self.slot_time(self.next);
        let mut out = vec![];
        match self.trigger.take() {
            None => {
                let f = self.plan.template_frame();
                self.sw.inject(self.plan.gen_port, &f, now, &mut out)?;
            }
            Some(r) => self.sw.reinject(&r, now, &mut out)?,
        }
        let mut sent = None;
        for o in out {
            match o {
                Output::Recirculate(r) => self.trigger = Some(r),
                Output::Tx { port, bytes } => {
                    sent = Some(Sent {
                        slot: self.next,
                        port,
                        bytes,
                    })
                }
            }
        }
        self.next += 1;
        Ok(Some(sent))
    }

    /// A reply arriving on `port` at `now_ns`.
    pub fn reply(&mut self, port: u16, bytes: &[u8], now_ns: u64) -> Result<(), PacketError> {
        let mut out = vec![];
        self.sw.inject(port, bytes, now_ns, &mut out)
    }

    pub fn counters(&self) -> SlogCounters {
        counters(&self.sw, self.plan.targets.len())
    }

    pub fn histogram(&self) -> Histogram {
        Histogram::read(&self.sw, &self.plan)
    }
}

/// The TX timestamp (us, 32 bits) a request carries: IPv4 source low 16 bits, UDP source.
pub fn tx_us(frame: &[u8]) -> Option<u32> {
    let ip = frame.get(28..30)?;
    let port = frame.get(34..36)?;
    Some(u32::from_be_bytes([ip[0], ip[1], port[0], port[1]]))
}

/// What an echo server sends back for a request: MACs, IPv4 addresses and UDP ports
/// swapped, the IPv4 checksum recomputed (UDP checksum 0). None if it is not IPv4/UDP.
pub fn echo(frame: &[u8]) -> Option<Vec<u8>> {
    if frame.len() < 42 || frame[12..14] != [8, 0] || frame[14] != 0x45 || frame[23] != 17 {
        return None;
    }
    let mut r = frame.to_vec();
    r[0..6].copy_from_slice(&frame[6..12]);
    r[6..12].copy_from_slice(&frame[0..6]);
    r[26..30].copy_from_slice(&frame[30..34]);
    r[30..34].copy_from_slice(&frame[26..30]);
    r[34..36].copy_from_slice(&frame[36..38]);
    r[36..38].copy_from_slice(&frame[34..36]);
    r[40..42].copy_from_slice(&[0, 0]);
    r[24..26].copy_from_slice(&[0, 0]);
    let c = crate::externs::csum16(&r[14..34]);
    r[24..26].copy_from_slice(&c.to_be_bytes());
    Some(r)
}

/// The whole experiment of `cfg` against its `[dut]`: every request is echoed back on its
/// port after the device's latency and jitter (seeded), replies enter in time order
/// between slots. Returns the experiment at the end (counters and histogram readable).
pub fn run_with_dut(cfg: &SlogConfig) -> Result<Experiment, String> {
    let plan = cfg.plan().map_err(|e| e.to_string())?;
    let dut = cfg.dut.unwrap_or_default();
    let mut ex = Experiment::new(plan, cfg.seed, 0).map_err(|e| e.to_string())?;
    let mut jitter = Rng::new(cfg.seed ^ 0x5106);
    // (arrival ns, sequence, port, frame): a min-heap by arrival.
    let mut pending = BinaryHeap::new();
    let mut seq = 0u64;
    let deliver = |ex: &mut Experiment, heap: &mut BinaryHeap<_>, until: u64| {
        while let Some(Reverse((t, _, _, _))) = heap.peek() {
            if *t > until {
                break;
            }
            let Some(Reverse((t, _, port, f))) = heap.pop() else {
                break;
            };
            let f: Vec<u8> = f;
            ex.reply(port, &f, t).map_err(|e| e.to_string())?;
        }
        Ok::<(), String>(())
    };
    while !ex.finished() {
        let now = ex.slot_time(ex.next_slot());
        deliver(&mut ex, &mut pending, now)?;
        if let Some(Some(s)) = ex.slot().map_err(|e| e.to_string())?
            && let Some(r) = echo(&s.bytes)
        {
            let extra = jitter.below(u128::from(dut.jitter_us) + 1) as u64;
            let at = now + (dut.latency_us + extra) * 1000;
            seq += 1;
            pending.push(Reverse((at, seq, s.port, r)));
        }
    }
    deliver(&mut ex, &mut pending, u64::MAX)?;
    Ok(ex)
}
