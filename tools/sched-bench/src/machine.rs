//! The simulated machine: one host thread per core running the thesis's per-core loop over the
//! real [`ferrix_sched`] scheduler, with busy-spun service times and flag-polled "IPIs".
//!
//! What each piece stands for:
//! - **NIC ring** of core i: the time-sorted arrivals RSS sends to i, with a cursor the core
//!   advances. "Descriptors wait" (`PacketView::nic`) = the next arrival's time has passed. There
//!   is no separate software packet queue: polling the NIC runs the network stack at once.
//! - **Network stack** (`PollNic`, and the IPI handler): moves every due arrival into its flow's
//!   event queue (the PCB's, a per-flow lock as in the thesis) and calls [`Sched::notify`].
//! - **Application code**: the owner of a claimed flow spins for each event's service time, in
//!   [`CoreMode::App`]. Every `ipi_poll_ns` it looks at its interrupt flag.
//! - **Replies**: an event's reply is one "call". The home core transmits its own flow's replies
//!   when the events of the claim have run (the batched system calls of IX/ZygOS) and releases
//!   the flow with [`Sched::complete_local`]. A thief hands them to [`Sched::complete_stolen`];
//!   they are transmitted when the home core runs [`Sched::run_remote`]. A reply's completion
//!   time is when it is transmitted.
//! - **IPI**: an atomic flag on the target. The sender asks the scheduler ([`Sched::ipi_for_packets`]
//!   or the decision of [`Sched::complete_stolen`]) and sets the flag only on
//!   [`IpiDecision::Send`]. The target, when it next polls the flag in application code, runs
//!   the handler of thesis 6.4.5: the network stack if its shuffle queue is empty, then its remote
//!   calls; then it resumes the interrupted event, whose remaining service time is unchanged.

use std::collections::VecDeque;
use std::hint::spin_loop;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use ferrix_sched::idle::{Action, XorShift32, next_action};
use ferrix_sched::ipi::{Clock, CoreMode, IpiDecision};
use ferrix_sched::{Claim, CoreId, FlowId, HomeCore, PacketView, Policy, Sched};

use crate::workload::Workload;

/// The calls a stolen flow sends home: the request ids whose replies to transmit.
pub(crate) type Calls = Vec<u32>;

/// A gap of at least this long between two clock reads of one core means the host took the CPU
/// away (or something else stalled the thread): counted, as a measure of the noise.
pub(crate) const STALL_NS: u64 = 20_000;

/// Keeps a value on its own cache line, so cores polling one core's flags and cursors do not
/// false-share with another's.
#[repr(align(64))]
#[derive(Debug, Default)]
struct Padded<T>(T);

/// The monotonic clock every core reads: ns since the run's origin.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostClock {
    origin: Instant,
}

impl Clock for HostClock {
    fn now_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }
}

/// A core's NIC ring: the request ids it receives, in arrival order, and the next to take.
#[derive(Debug)]
struct Ring {
    ids: Vec<u32>,
    /// Arrival times of `ids` (kept apart so polling another core's ring reads one array).
    times: Vec<u64>,
    cursor: Padded<AtomicUsize>,
}

impl Ring {
    fn due(&self, now: u64) -> bool {
        let cur = self.cursor.0.load(Ordering::Acquire);
        cur < self.times.len() && self.times[cur] <= now
    }
}

/// [`PacketView`] over the rings at one instant.
struct RingView<'a> {
    rings: &'a [Ring],
    now: u64,
}

impl PacketView for RingView<'_> {
    fn sw_packets(&self, _core: CoreId) -> bool {
        false
    }
    fn nic(&self, core: CoreId) -> bool {
        self.rings[core.index()].due(self.now)
    }
}

/// A flow as the machine sees it: its event queue (the PCB's, request ids in arrival order).
#[derive(Debug)]
struct Flow {
    events: Mutex<VecDeque<u32>>,
}

/// Everything the cores share during one run.
pub(crate) struct Machine<'w> {
    sched: Sched<Calls>,
    policy: Policy,
    work: &'w Workload,
    flows: Vec<Flow>,
    /// Per core, flow slot -> index into `flows` / `work.flows`.
    slots: Vec<Vec<u32>>,
    rings: Vec<Ring>,
    ipi_flags: Vec<Padded<AtomicBool>>,
    completed: Padded<AtomicUsize>,
    failed: AtomicBool,
    clock: HostClock,
    ipi_poll_ns: u64,
}

/// What one core counted.
#[derive(Debug, Default, Clone)]
pub(crate) struct CoreStats {
    /// Events run for flows homed here.
    pub local_events: u64,
    /// Events run here for flows stolen from other cores.
    pub stolen_events: u64,
    /// Flows stolen (claims).
    pub steals: u64,
    /// Own flows claimed.
    pub local_claims: u64,
    /// IPIs sent for packets waiting on a core in application code.
    pub ipis_packets: u64,
    /// IPIs sent for remote calls queued on a home core in application code.
    pub ipis_calls: u64,
    /// IPIs the rate limiter refused.
    pub ipis_rate_limited: u64,
    /// IPI handlers run here.
    pub ipis_handled: u64,
    /// Remote batches this core ran as home core.
    pub remote_batches: u64,
    /// Gaps of at least [`STALL_NS`] between clock reads, and their total length.
    pub stalls: u64,
    pub stall_ns: u64,
    /// The longest of them.
    pub max_stall_ns: u64,
}

/// A reply transmitted by a home core: request id and time.
pub(crate) type Completion = (u32, u64);

/// Everything one run produced.
#[derive(Debug)]
pub(crate) struct RunOutput {
    pub cores: Vec<CoreStats>,
    /// Per home core, its transmissions in the order it made them.
    pub completions: Vec<Vec<Completion>>,
    /// Time the last core stopped, ns after the origin.
    pub end_ns: u64,
}

/// A worker thread panicked (a scheduler invariant broke); the others were stopped.
#[derive(Debug)]
pub(crate) struct WorkerPanicked;

impl<'w> Machine<'w> {
    /// A machine for `work` under `config`, and the cores' private scheduler state for [`Self::run`].
    pub fn new(
        config: ferrix_sched::Config,
        work: &'w Workload,
        ipi_poll_ns: u64,
    ) -> (Self, Vec<HomeCore<Calls>>) {
        let (sched, homes) = Sched::new(config);
        let mut slots = vec![Vec::new(); config.cores];
        for (i, f) in work.flows.iter().enumerate() {
            let s = &mut slots[f.home().index()];
            debug_assert_eq!(s.len(), f.slot() as usize);
            s.push(i as u32);
        }
        let rings = work
            .rings
            .iter()
            .map(|ids| Ring {
                times: ids
                    .iter()
                    .map(|&r| work.requests[r as usize].arrival_ns)
                    .collect(),
                ids: ids.clone(),
                cursor: Padded::default(),
            })
            .collect();
        let machine = Self {
            sched,
            policy: config.policy,
            work,
            flows: work
                .flows
                .iter()
                .map(|_| Flow {
                    events: Mutex::new(VecDeque::new()),
                })
                .collect(),
            slots,
            rings,
            ipi_flags: (0..config.cores).map(|_| Padded::default()).collect(),
            completed: Padded::default(),
            failed: AtomicBool::new(false),
            clock: HostClock {
                origin: Instant::now(),
            },
            ipi_poll_ns,
        };
        (machine, homes)
    }

    /// Runs every request to completion on one thread per core.
    pub fn run(self, homes: Vec<HomeCore<Calls>>) -> Result<RunOutput, WorkerPanicked> {
        let machine = &self;
        let results: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = homes
                .into_iter()
                .map(|home| {
                    std::thread::Builder::new()
                        .name(format!("sched-core-{}", home.core.0))
                        .spawn_scoped(s, move || Worker::new(home).run(machine))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.map_err(|_| WorkerPanicked)?
                        .join()
                        .map_err(|_| WorkerPanicked)
                })
                .collect()
        });
        let mut out = RunOutput {
            cores: Vec::new(),
            completions: Vec::new(),
            end_ns: 0,
        };
        for r in results {
            let (stats, log, end) = r?;
            out.cores.push(stats);
            out.completions.push(log);
            out.end_ns = out.end_ns.max(end);
        }
        Ok(out)
    }

    /// Index of `flow` in the workload's flow table.
    fn flow_index(&self, flow: FlowId) -> usize {
        self.slots[flow.home().index()][flow.slot() as usize] as usize
    }

    fn done(&self) -> bool {
        self.completed.0.load(Ordering::Relaxed) >= self.work.requests.len()
            || self.failed.load(Ordering::Relaxed)
    }
}

/// Sets the machine's `failed` flag if the worker unwinds, so the other workers stop.
struct FailGuard<'a>(&'a AtomicBool);

impl Drop for FailGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

/// One core's private state.
struct Worker {
    me: CoreId,
    home: HomeCore<Calls>,
    rng: XorShift32,
    mode: CoreMode,
    stats: CoreStats,
    log: Vec<Completion>,
    /// Last clock read, for stall detection.
    last_ns: u64,
}

impl Worker {
    fn new(home: HomeCore<Calls>) -> Self {
        Self {
            me: home.core,
            rng: XorShift32::new(
                0x2545_f491 ^ (u32::from(home.core.0) + 1).wrapping_mul(0x9e37_79b9),
            ),
            home,
            mode: CoreMode::Kernel,
            stats: CoreStats::default(),
            log: Vec::new(),
            last_ns: 0,
        }
    }

    /// Reads the clock, counting a stall if the thread lost the CPU since the last read.
    fn now(&mut self, m: &Machine<'_>) -> u64 {
        let now = m.clock.now_ns();
        let gap = now.saturating_sub(self.last_ns);
        if gap >= STALL_NS && self.last_ns != 0 {
            self.stats.stalls += 1;
            self.stats.stall_ns += gap;
            self.stats.max_stall_ns = self.stats.max_stall_ns.max(gap);
        }
        self.last_ns = now;
        now
    }

    fn set_mode(&mut self, m: &Machine<'_>, mode: CoreMode) {
        if self.mode != mode {
            self.mode = mode;
            m.sched.set_mode(self.me, mode);
        }
    }

    fn run(mut self, m: &Machine<'_>) -> (CoreStats, Vec<Completion>, u64) {
        let _guard = FailGuard(&m.failed);
        self.last_ns = m.clock.now_ns();
        while !m.done() {
            let now = self.now(m);
            if self.home.overflowed() > 0 {
                // Ready flows the shuffle queue refused are invisible to the view: run them.
                self.set_mode(m, CoreMode::Kernel);
                self.run_own(m);
                continue;
            }
            let packets = RingView {
                rings: &m.rings,
                now,
            };
            let action = next_action(self.me, m.policy, &m.sched.view(&packets), &mut self.rng);
            match action {
                Action::RunRemoteCalls => {
                    self.set_mode(m, CoreMode::Kernel);
                    self.run_remote(m);
                }
                Action::RunNetStack | Action::PollNic => {
                    self.set_mode(m, CoreMode::Kernel);
                    self.net_stack(m);
                }
                Action::RunOwnFlow => {
                    self.set_mode(m, CoreMode::Kernel);
                    self.run_own(m);
                }
                Action::Steal { victim } => {
                    self.set_mode(m, CoreMode::Kernel);
                    if let Some(claim) = m.sched.steal(victim) {
                        self.stats.steals += 1;
                        self.run_claim(m, claim, false);
                    }
                }
                Action::Ipi { target, .. } => match m.sched.ipi_for_packets(target, &m.clock) {
                    IpiDecision::Send => {
                        m.ipi_flags[target.index()].0.store(true, Ordering::Release);
                        self.stats.ipis_packets += 1;
                    }
                    IpiDecision::RateLimited => self.stats.ipis_rate_limited += 1,
                    IpiDecision::NotNeeded => {}
                },
                Action::Nothing => {
                    self.set_mode(m, CoreMode::Idle);
                    spin_loop();
                }
            }
        }
        let end = m.clock.now_ns();
        (self.stats, self.log, end)
    }

    fn run_own(&mut self, m: &Machine<'_>) {
        if let Some(claim) = m.sched.next_local(&mut self.home) {
            self.run_claim(m, claim, true);
        }
    }

    /// The network stack: every due arrival of the own ring into its flow's event queue.
    fn net_stack(&mut self, m: &Machine<'_>) {
        let now = self.now(m);
        let ring = &m.rings[self.me.index()];
        let mut cur = ring.cursor.0.load(Ordering::Relaxed);
        while cur < ring.ids.len() && ring.times[cur] <= now {
            let id = ring.ids[cur];
            let flow = m.work.requests[id as usize].flow as usize;
            m.flows[flow]
                .events
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_back(id);
            m.sched.notify(&mut self.home, m.work.flows[flow], 1);
            cur += 1;
        }
        ring.cursor.0.store(cur, Ordering::Release);
    }

    /// Home core: transmit the replies thieves sent back and release their flows.
    fn run_remote(&mut self, m: &Machine<'_>) {
        let now = self.now(m);
        let log = &mut self.log;
        let mut sent = 0;
        let batches = m.sched.run_remote(&mut self.home, |_, calls| {
            sent += calls.len();
            log.extend(calls.into_iter().map(|id| (id, now)));
        });
        self.stats.remote_batches += batches as u64;
        m.completed.0.fetch_add(sent, Ordering::Release);
    }

    /// Runs the events of a claimed flow, then completes it (locally or by sending the calls home).
    fn run_claim(&mut self, m: &Machine<'_>, claim: Claim, local: bool) {
        let flow = m.flow_index(claim.flow);
        let calls: Calls = {
            let mut q = m.flows[flow]
                .events
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            (0..claim.events)
                .map(|_| {
                    q.pop_front()
                        .expect("a claimed event is in the flow's queue (appended before notify)")
                })
                .collect()
        };
        self.set_mode(m, CoreMode::App);
        for &id in &calls {
            self.app_code(m, m.work.requests[id as usize].service_ns);
        }
        self.set_mode(m, CoreMode::Kernel);
        let n = calls.len() as u64;
        if local {
            self.stats.local_claims += 1;
            self.stats.local_events += n;
            let now = self.now(m);
            self.log.extend(calls.iter().map(|&id| (id, now)));
            m.completed.0.fetch_add(calls.len(), Ordering::Release);
            m.sched.complete_local(&mut self.home, claim.flow);
        } else {
            self.stats.stolen_events += n;
            match m.sched.complete_stolen(claim.flow, Some(calls), &m.clock) {
                IpiDecision::Send => {
                    m.ipi_flags[claim.flow.home().index()]
                        .0
                        .store(true, Ordering::Release);
                    self.stats.ipis_calls += 1;
                }
                IpiDecision::RateLimited => self.stats.ipis_rate_limited += 1,
                IpiDecision::NotNeeded => {}
            }
        }
    }

    /// Busy-spins `service_ns` of application time, taking IPIs; time in a handler does not count.
    fn app_code(&mut self, m: &Machine<'_>, service_ns: u64) {
        let start = self.now(m);
        let mut until = start + service_ns;
        let mut next_poll = start + m.ipi_poll_ns;
        loop {
            let now = self.now(m);
            if now >= until {
                return;
            }
            if now >= next_poll {
                next_poll = now + m.ipi_poll_ns;
                let flag = &m.ipi_flags[self.me.index()].0;
                if flag.load(Ordering::Relaxed) && flag.swap(false, Ordering::Acquire) {
                    self.ipi_handler(m);
                    let back = self.now(m);
                    until += back - now;
                    next_poll = back + m.ipi_poll_ns;
                }
            }
            spin_loop();
        }
    }

    /// The IPI handler of thesis 6.4.5: network stack if the shuffle queue is empty, then the
    /// remote calls (which transmit), then back to the interrupted application code.
    fn ipi_handler(&mut self, m: &Machine<'_>) {
        self.stats.ipis_handled += 1;
        self.set_mode(m, CoreMode::Kernel);
        if m.sched.core(self.me).shuffle.is_empty() {
            self.net_stack(m);
        }
        self.run_remote(m);
        self.set_mode(m, CoreMode::App);
    }
}
