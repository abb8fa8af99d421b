//! ZygOS serving of TCP (thesis chapter 6): `ferrix-sched` wired to the per-core endpoints.
//!
//! Every core runs [`serve_tcp`]. A connection lives on its *home core* (the core whose queue
//! pair RSS hands its packets to; the only core that touches its smoltcp socket). TCP input on
//! the home core turns segments into *flow events* (accepted, data, send room, timer, peer
//! closed, closed): the bytes are copied from the socket into the flow's inbox (one copy: a
//! thief cannot reach the home core's socket ring), the event is appended, and
//! `Sched::notify` makes the flow ready on the home core's shuffle queue. Whoever takes the
//! flow (the home core, or an idle *thief* under `zygos` / `zygos-noipi`) owns it exclusively
//! and runs the app's [`TcpService`] on its events with interrupts enabled; the app's calls
//! (send, close, set a timer) go to the flow's outbox, and its per-connection word
//! ([`Flow::user`]) travels with the flow. The home core executes them on the socket: at once
//! when it ran the flow itself, or from its remote-syscall queue when a thief did.
//!
//! The idle loop follows `ferrix_sched::idle::next_action`. Under `zygos`, an idle core that
//! sees packets waiting on a core busy in app code, or a thief that queued calls for such a
//! core, sends it an IPI (rate limited per target, `ferrix.ipi-interval-ns`); the handler runs
//! that core's remote calls and its network stack, then returns to the interrupted app code.
//! The kernel part of the loop runs with interrupts off: the IPI handler takes the per-core
//! locks the loop holds, so it may only run while the core is in app code.
//!
//! Cores without a queue pair of their own (fewer pairs than cores) are home to no connection;
//! they only steal (so under `partitioned` they stay idle).
//!
//! Per-flow state is allocated once per slot (`max_conns` slots per home core, plus slack for
//! closed connections whose last events have not run yet); the inbox and outbox vectors keep
//! their capacity across connections, so steady state does not allocate.

use super::{ENDPOINTS, NetError, with_endpoint};
use crate::percpu::MAX_CPUS;
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use ferrix_net::tcp::{ConnId, TcpConfig, TcpEndpoint, TcpEvent};
use ferrix_sched::idle::{self, Action, XorShift32};
use ferrix_sched::ipi::{Clock, CoreMode, IpiDecision};
use ferrix_sched::{Claim, Config, CoreId, FlowId, HomeCore, PacketView, Policy, Sched};

/// What happened on a connection, as the app sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowEvent {
    /// A new connection (the first event of a flow).
    Accepted,
    /// Bytes arrived: [`Flow::data`] holds everything received and not consumed yet.
    Received,
    /// Room to send again: an earlier [`Flow::send`] took less than asked, and the backlog has
    /// since drained to half of [`FLOW_TX_MAX`].
    Sent,
    /// The timer set with [`Flow::set_timer`] is due.
    Timer,
    /// The peer will send nothing more; [`Flow::close`] when done.
    PeerClosed,
    /// The connection is gone (the last event of a flow); calls are ignored.
    Closed,
}

/// The app's TCP service: called for every event of every connection, on whatever core runs
/// the flow (its home core or a thief), one event at a time per connection, in order.
pub trait TcpService: Sync {
    /// Handles one event; read with [`Flow::data`] / [`Flow::consume`], answer with
    /// [`Flow::send`], end with [`Flow::close`].
    fn on_event(&self, flow: &mut Flow<'_>, event: FlowEvent);

    /// Called now and then (about every 50 µs) on a core that has nothing to do, with the time
    /// (`ferrix::time::now_ns`); for the app's timers and housekeeping. Keep it short: it runs
    /// in the kernel's loop, interrupts off. Default: nothing.
    fn on_idle(&self, now_ns: u64) {
        let _ = now_ns;
    }

    /// A UDP datagram to a port the app bound on this core ([`crate::net::bind_udp`], before
    /// calling [`serve_tcp`]) while `serve_tcp` runs: the handler of [`crate::net::poll`]
    /// (`Some(n)` sends the first `n` bytes of `buf` back, built in place). It runs in the
    /// kernel's loop with interrupts off and this core's endpoint held: keep it short and call
    /// no `ferrix::net` function; queue other datagrams and send them from
    /// [`TcpService::after_poll`]. Default: datagrams are dropped.
    fn on_udp(&self, datagram: &super::Datagram, buf: &mut [u8]) -> Option<usize> {
        let _ = (datagram, buf);
        None
    }

    /// Called on this core after each poll of its endpoint, with the endpoint free again (so
    /// `ferrix::net::send_udp` works): for datagrams [`TcpService::on_udp`] queued. Default:
    /// nothing.
    fn after_poll(&self) {}
}

/// One connection while its events run: received bytes, and the calls made on it.
pub struct Flow<'a> {
    id: FlowId,
    rx: &'a [u8],
    consumed: usize,
    tx: &'a mut Vec<u8>,
    tx_limit: usize,
    /// A send took less than asked (the app wants [`FlowEvent::Sent`]).
    tx_short: bool,
    close: bool,
    timer: Option<u64>,
    user: u64,
}

impl Flow<'_> {
    /// The flow's id (unique among open connections of the VM).
    pub fn id(&self) -> u32 {
        self.id.to_raw()
    }

    /// The connection's home core.
    pub fn home(&self) -> usize {
        self.id.home().index()
    }

    /// Received bytes not consumed yet.
    pub fn data(&self) -> &[u8] {
        &self.rx[self.consumed..]
    }

    /// Marks the first `n` bytes of [`Flow::data`] consumed (at most all of them).
    pub fn consume(&mut self, n: usize) {
        self.consumed = (self.consumed + n).min(self.rx.len());
    }

    /// Queues `bytes` for sending, in order after everything sent before. Returns how many
    /// were taken: less than `bytes.len()` when the flow's unsent backlog is full (the app
    /// should keep the request unconsumed and retry on a later event).
    pub fn send(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(self.tx_limit.saturating_sub(self.tx.len()));
        self.tx.extend_from_slice(&bytes[..n]);
        self.tx_short |= n < bytes.len();
        n
    }

    /// Asks for one [`FlowEvent::Timer`] `after_ns` from now (replacing an earlier timer of
    /// this flow). Timers are checked whenever the home core polls (at least every 50 µs when
    /// idle, every 1 ms when busy).
    pub fn set_timer(&mut self, after_ns: u64) {
        self.timer = Some(crate::time::now_ns().saturating_add(after_ns));
    }

    /// The app's per-connection word (0 at `Accepted`), kept across events whatever core runs
    /// them: a state, an index into the app's own table.
    pub fn user(&mut self) -> &mut u64 {
        &mut self.user
    }

    /// Room left for [`Flow::send`].
    pub fn send_room(&self) -> usize {
        self.tx_limit.saturating_sub(self.tx.len())
    }

    /// Closes the connection once everything queued is sent.
    pub fn close(&mut self) {
        self.close = true;
    }
}

/// Received bytes a flow buffers before TCP stops reading from the socket (its window then
/// closes: back-pressure).
pub const FLOW_RX_MAX: usize = 16 * 1024;
/// See [`FLOW_RX_MAX`].
pub const FLOW_TX_MAX: usize = 64 * 1024;
/// Flow slots per home core beyond `max_conns`: closed connections whose last events have not
/// run yet keep their slot until then.
const SLACK_SLOTS: usize = 64;
/// How often an idle core polls its own endpoint anyway (TCP timers, ARP copies), and how
/// often a busy one does.
const IDLE_POLL_NS: u64 = 50_000;
/// Longest halt of an idle core (`ferrix.idle-halt-us`): its one-shot timer wakes it then.
const HALT_NS: u64 = 100_000;
const BUSY_POLL_NS: u64 = 1_000_000;

/// One flow's shared part. The home core appends events and bytes; the owner takes them and
/// leaves its calls. Locked only briefly, with interrupts off, never across app code.
#[derive(Default)]
struct FlowData {
    conn: Option<ConnId>,
    events: VecDeque<FlowEvent>,
    rx: Vec<u8>,
    /// The socket holds bytes the inbox had no room for.
    rx_blocked: bool,
    /// Unsent bytes, in order (the owner appends, the home core moves them to the socket).
    tx: Vec<u8>,
    close: bool,
    /// The owner ran the `Closed` event: the slot is free once the flow is released.
    dead: bool,
    /// A send was cut short: deliver `Sent` once the backlog has drained to half.
    want_sent: bool,
    /// Timer the owner asked for, not yet handed to the home core's timer heap.
    timer_req: Option<u64>,
    /// The deadline of the flow's current timer (heap entries with another are stale).
    timer_due: Option<u64>,
    /// The app's word.
    user: u64,
}

impl FlowData {
    /// Whether the home core has work for this flow after its owner finished.
    fn needs_home(&self) -> bool {
        !self.tx.is_empty()
            || self.close
            || self.dead
            || self.rx_blocked
            || self.timer_req.is_some()
            || self.want_sent
    }
}

/// Scheduler counters of one core.
#[derive(Default)]
pub struct CoreSchedStats {
    /// Flow events this core ran (app handler calls).
    pub events: AtomicU64,
    /// Flows this core took from its own shuffle queue.
    pub local_runs: AtomicU64,
    /// Flows this core stole from other cores.
    pub steals: AtomicU64,
    /// IPIs this core sent (packets waiting / remote calls).
    pub ipis_sent: AtomicU64,
    /// IPIs this core handled by running its network stack / remote calls.
    pub ipi_runs: AtomicU64,
    /// Remote-call batches this core executed for thieves.
    pub remote_batches: AtomicU64,
    /// Connections refused (reset) because every flow slot was taken.
    pub refused: AtomicU64,
    /// Guest ns in loop turns that did something (not idle polling), and the part of it spent
    /// in app code (IPI handlers included). Under QEMU `-icount shift=0` a guest ns is one
    /// instruction, so `(busy_ns - app_ns) / events` is the kernel's instructions per event
    /// (scheduler + TCP + driver).
    pub busy_ns: AtomicU64,
    pub app_ns: AtomicU64,
}

struct Runtime {
    sched: Sched<()>,
    flows: Box<[Box<[spin::Mutex<FlowData>]>]>,
}

/// A home core's private scheduler state: conn slot -> flow slot, free flow slots.
struct Home {
    core: HomeCore<()>,
    by_conn: Vec<Option<u32>>,
    free: Vec<u32>,
    /// Flow timers: (deadline, flow slot); stale when the flow's `timer_due` differs.
    timers: alloc::collections::BinaryHeap<core::cmp::Reverse<(u64, u32)>>,
}

static RUNTIME: spin::Once<Runtime> = spin::Once::new();
static HOMES: [spin::Mutex<Option<Home>>; MAX_CPUS] = [const { spin::Mutex::new(None) }; MAX_CPUS];
static ACTIVE: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
static STATS: [CoreSchedStats; MAX_CPUS] = [const {
    CoreSchedStats {
        events: AtomicU64::new(0),
        local_runs: AtomicU64::new(0),
        steals: AtomicU64::new(0),
        ipis_sent: AtomicU64::new(0),
        ipi_runs: AtomicU64::new(0),
        remote_batches: AtomicU64::new(0),
        refused: AtomicU64::new(0),
        busy_ns: AtomicU64::new(0),
        app_ns: AtomicU64::new(0),
    }
}; MAX_CPUS];

struct KernelClock;
impl Clock for KernelClock {
    fn now_ns(&self) -> u64 {
        crate::time::now_ns()
    }
}

/// Other cores' receive rings, as the idle loop sees them (a core in the middle of its own
/// poll holds its endpoint: it is in the kernel and needs no IPI, so "nothing pending").
struct Rings;
impl PacketView for Rings {
    fn sw_packets(&self, _core: CoreId) -> bool {
        false // frames go from the ring through TCP in one poll: no software queue
    }
    fn nic(&self, core: CoreId) -> bool {
        ENDPOINTS
            .get(core.index())
            .and_then(|slot| slot.try_lock())
            .is_some_and(|g| g.as_ref().is_some_and(|ep| ep.rx_pending()))
    }
}

/// The policy the command line asks for (`ferrix.sched=`, default `zygos`).
pub fn boot_policy() -> Policy {
    crate::cmdline::parse(crate::mem::kernel::cmdline(), MAX_CPUS)
        .map(|o| o.sched)
        .unwrap_or_default()
}

/// The policy in use, once [`serve_tcp`] started.
pub fn policy() -> Option<Policy> {
    RUNTIME.get().map(|rt| rt.sched.policy())
}

/// Core `core`'s scheduler counters.
pub fn stats(core: usize) -> Option<&'static CoreSchedStats> {
    STATS.get(core)
}

/// Core `core`'s queue depths now (lock-free snapshots): ready flows in its shuffle queue,
/// remote-call batches waiting for it. None before [`serve_tcp`] started.
pub fn queue_depths(core: usize) -> Option<(usize, usize)> {
    let rt = RUNTIME.get().filter(|rt| core < rt.sched.cores())?;
    let c = rt.sched.core(CoreId(u8::try_from(core).ok()?));
    Some((c.shuffle.len(), c.remote.len()))
}

fn runtime(cfg: &TcpConfig) -> &'static Runtime {
    RUNTIME.call_once(|| {
        crate::ipi::set_kernel_hook(on_ipi);
        let cmdline = crate::mem::kernel::cmdline();
        let opts = crate::cmdline::parse(cmdline, MAX_CPUS).unwrap_or_default();
        let cores = crate::sdk::cpus();
        let per_core = cfg.max_conns + cfg.listeners + SLACK_SLOTS;
        let mut config = Config::new(cores, per_core);
        config.policy = opts.sched;
        config.ipi_min_interval_ns = opts.ipi_interval_ns;
        let (sched, homes) = Sched::new(config);
        for (c, core) in homes.into_iter().enumerate() {
            *HOMES[c].lock() = Some(Home {
                core,
                by_conn: Vec::new(),
                free: (0..per_core as u32).rev().collect(),
                timers: alloc::collections::BinaryHeap::with_capacity(per_core),
            });
        }
        let flows = (0..cores)
            .map(|_| (0..per_core).map(|_| spin::Mutex::default()).collect())
            .collect();
        Runtime { sched, flows }
    })
}

impl Runtime {
    fn flow(&self, f: FlowId) -> &spin::Mutex<FlowData> {
        &self.flows[f.home().index()][f.slot() as usize]
    }
}

/// Asks every core's [`serve_tcp`] to return once it has had nothing to do for
/// [`STOP_GRACE_NS`] (so calls thieves are sending home still go out) and, on a home core,
/// everything its connections sent has been acknowledged (or [`STOP_DRAIN_NS`] passed).
/// Callable from app code.
pub fn stop() {
    STOP_AT.call_once(crate::time::now_ns);
}

static STOP_AT: spin::Once<u64> = spin::Once::new();
/// How long a core must find nothing to do after [`stop`] before [`serve_tcp`] returns.
pub const STOP_GRACE_NS: u64 = 20_000_000;
/// Longest wait after [`stop`] for peers to acknowledge what was sent (a peer that went away
/// must not keep the VM up).
pub const STOP_DRAIN_NS: u64 = 5_000_000_000;

/// Whether this home core still has output in flight: flow backlogs not yet on a socket, or
/// socket bytes not yet acknowledged.
fn output_pending(me: usize, rt: &Runtime) -> bool {
    rt.flows[me].iter().any(|f| !f.lock().tx.is_empty())
        || with_endpoint(|ep| ep.with_tcp(|t| t.unacked_bytes() > 0))
            .ok()
            .flatten()
            .unwrap_or(false)
}

/// Serves TCP on this core under the policy of `ferrix.sched=` (default `zygos`) until
/// [`stop`] is called. Call it on every core with the same `cfg` and an equivalent `service`.
/// Cores without their own queue pair steal work (they are home to no connection). Errors:
/// no NIC, no network configuration on the command line.
pub fn serve_tcp(cfg: TcpConfig, service: &dyn TcpService) -> Result<(), NetError> {
    let me = crate::percpu::core_id();
    let rt = runtime(&cfg);
    let has_home = match super::tcp_listen(cfg) {
        Ok(()) => true,
        Err(NetError::NoQueue) => false,
        Err(e) => return Err(e),
    };
    if has_home {
        let pool = with_endpoint(|ep| ep.with_tcp(|t| t.pool_size()))
            .ok()
            .flatten();
        if let Some(h) = HOMES[me].lock().as_mut() {
            h.by_conn = alloc::vec![None; pool.unwrap_or(0)];
        }
    }
    crate::arch::cpu::disable_interrupts();
    ACTIVE[me].store(true, Ordering::Release);
    let mut worker = Worker {
        me,
        rt,
        service,
        has_home,
        rng: XorShift32::new((crate::arch::cpu::rdtsc() as u32) ^ (me as u32 + 1)),
        events: Vec::new(),
        rx: Vec::new(),
        tx: Vec::new(),
        last_poll: 0,
        quiet_since: None,
        idle_since: None,
        halt_after_ns: crate::cmdline::parse(crate::mem::kernel::cmdline(), MAX_CPUS)
            .map_or(0, |o| o.idle_halt_us.saturating_mul(1000)),
    };
    while worker.step() {}
    ACTIVE[me].store(false, Ordering::Release);
    crate::arch::cpu::enable_interrupts();
    Ok(())
}

/// One core's loop state (its scratch vectors are reused across flows).
struct Worker<'a> {
    me: usize,
    rt: &'static Runtime,
    service: &'a dyn TcpService,
    has_home: bool,
    rng: XorShift32,
    events: Vec<FlowEvent>,
    rx: Vec<u8>,
    tx: Vec<u8>,
    last_poll: u64,
    /// After [`stop`]: since when this core has found nothing to do.
    quiet_since: Option<u64>,
    /// Since when this core has found nothing to do (for `ferrix.idle-halt-us`).
    idle_since: Option<u64>,
    /// Halt after this long idle (0: never).
    halt_after_ns: u64,
}

impl Worker<'_> {
    /// One turn of the loop; false when the core should leave [`serve_tcp`].
    fn step(&mut self) -> bool {
        let sched = &self.rt.sched;
        let me = CoreId(self.me as u8);
        sched.set_mode(me, CoreMode::Kernel);
        let t0 = crate::time::now_ns();
        // TCP timers and ARP copies need a poll now and then, even while flows keep this core
        // busy and its ring looks empty.
        if self.has_home && t0.saturating_sub(self.last_poll) > BUSY_POLL_NS {
            self.poll(t0);
        }
        let action = idle::next_action(me, sched.policy(), &sched.view(&Rings), &mut self.rng);
        match action {
            Action::RunRemoteCalls => home_work(self.me, self.rt, None),
            Action::RunNetStack | Action::PollNic => self.poll(t0),
            Action::RunOwnFlow => {
                let claim = HOMES[self.me]
                    .lock()
                    .as_mut()
                    .and_then(|h| sched.next_local(&mut h.core));
                if let Some(claim) = claim {
                    STATS[self.me].local_runs.fetch_add(1, Ordering::Relaxed);
                    self.run(claim);
                    finish_local(self.me, self.rt, claim.flow);
                }
            }
            Action::Steal { victim } => {
                if let Some(claim) = sched.steal(victim) {
                    STATS[self.me].steals.fetch_add(1, Ordering::Relaxed);
                    self.run(claim);
                    let calls = self.rt.flow(claim.flow).lock().needs_home().then_some(());
                    let d = sched.complete_stolen(claim.flow, calls, &KernelClock);
                    self.ipi(victim, d);
                }
            }
            Action::Ipi { target, .. } => {
                let d = sched.ipi_for_packets(target, &KernelClock);
                self.ipi(target, d);
            }
            Action::Nothing => {
                sched.set_mode(me, CoreMode::Idle);
                // Interrupts are off here, so the live-stats tick cannot fire: ask for it.
                super::report::on_tick(self.me);
                // The step's start is recent enough for these millisecond-scale checks.
                let now = t0;
                if let Some(&stop_at) = STOP_AT.get() {
                    let since = *self.quiet_since.get_or_insert(now);
                    if now.saturating_sub(since) > STOP_GRACE_NS
                        && (!self.has_home
                            || now.saturating_sub(stop_at) > STOP_DRAIN_NS
                            || !output_pending(self.me, self.rt))
                    {
                        return false;
                    }
                }
                if now.saturating_sub(self.last_poll) > IDLE_POLL_NS {
                    self.poll(now);
                    self.service.on_idle(now);
                } else if self.halt_after_ns > 0
                    && now.saturating_sub(*self.idle_since.get_or_insert(now)) > self.halt_after_ns
                {
                    // Interrupts come on for the halt; an IPI handler sees this core idle (not
                    // in app code) and does nothing, so no lock is taken under us.
                    crate::time::halt_for_ns(HALT_NS);
                    crate::arch::cpu::disable_interrupts();
                } else {
                    core::hint::spin_loop();
                }
                return true;
            }
        }
        self.quiet_since = None;
        self.idle_since = None;
        STATS[self.me]
            .busy_ns
            .fetch_add(crate::time::now_ns() - t0, Ordering::Relaxed);
        true
    }

    fn ipi(&self, target: CoreId, d: IpiDecision) {
        if d == IpiDecision::Send && crate::ipi::send(target.index()) {
            STATS[self.me].ipis_sent.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Polls this core's endpoint (TCP input makes flows ready; ARP, ICMP answered).
    /// Polls this core's endpoint; `now` is the step's clock reading (for the poll interval).
    fn poll(&mut self, now: u64) {
        self.last_poll = now;
        let service = self.service;
        if self.has_home {
            home_work(self.me, self.rt, Some(service));
        } else {
            // Cores without a queue pair: their endpoint's mailbox (ARP, ICMP and datagrams
            // steered here).
            let _ = with_endpoint(|ep| ep.poll(&mut |d, b| service.on_udp(d, b), &mut |_, _| {}));
        }
        run_deferred(self.me, service);
        service.after_poll();
    }

    /// Runs the claimed events of a flow through the app, interrupts on.
    fn run(&mut self, claim: Claim) {
        let slot = self.rt.flow(claim.flow);
        self.events.clear();
        self.rx.clear();
        self.tx.clear();
        let (tx_limit, user) = {
            let mut fd = slot.lock();
            let n = (claim.events as usize).min(fd.events.len());
            self.events.extend(fd.events.drain(..n));
            core::mem::swap(&mut self.rx, &mut fd.rx);
            (FLOW_TX_MAX.saturating_sub(fd.tx.len()), fd.user)
        };
        let mut flow = Flow {
            id: claim.flow,
            rx: &self.rx,
            consumed: 0,
            tx: &mut self.tx,
            tx_limit,
            tx_short: false,
            close: false,
            timer: None,
            user,
        };
        let mut closed = false;
        let sched = &self.rt.sched;
        sched.set_mode(CoreId(self.me as u8), CoreMode::App);
        let t0 = crate::time::now_ns();
        crate::arch::cpu::enable_interrupts();
        for &ev in &self.events {
            closed |= ev == FlowEvent::Closed;
            self.service.on_event(&mut flow, ev);
        }
        crate::arch::cpu::disable_interrupts();
        STATS[self.me]
            .app_ns
            .fetch_add(crate::time::now_ns() - t0, Ordering::Relaxed);
        sched.set_mode(CoreId(self.me as u8), CoreMode::Kernel);
        STATS[self.me]
            .events
            .fetch_add(self.events.len() as u64, Ordering::Relaxed);
        let (consumed, close, short, timer, user) = (
            flow.consumed,
            flow.close,
            flow.tx_short,
            flow.timer,
            flow.user,
        );
        let mut fd = slot.lock();
        // What the app left unread goes back in front of what arrived meanwhile.
        self.rx.drain(..consumed);
        self.rx.extend_from_slice(&fd.rx);
        core::mem::swap(&mut self.rx, &mut fd.rx);
        fd.user = user;
        if closed {
            fd.dead = true;
        } else {
            fd.tx.extend_from_slice(&self.tx);
            fd.close |= close;
            fd.want_sent |= short;
            if timer.is_some() {
                fd.timer_req = timer;
            }
        }
    }
}

/// Home core: releases a flow it ran itself, after executing its calls.
fn finish_local(me: usize, rt: &Runtime, flow: FlowId) {
    let mut home = HOMES[me].lock();
    let Some(h) = home.as_mut() else { return };
    let timers = &mut h.timers;
    let _ = with_endpoint(|ep| ep.with_tcp(|t| execute(rt, t, flow, timers)));
    rt.sched.complete_local(&mut h.core, flow);
    reclaim(rt, h, flow);
}

/// Home core work under its locks: remote calls of thieves, then (if `poll`) the NIC and TCP.
/// Also the IPI handler's body.
fn home_work(me: usize, rt: &Runtime, poll: Option<&dyn TcpService>) {
    let mut home = HOMES[me].lock();
    let Some(h) = home.as_mut() else { return };
    let _ = with_endpoint(|ep| {
        let mut done = Vec::new();
        ep.with_tcp(|t| {
            let timers = &mut h.timers;
            let n = rt.sched.run_remote(&mut h.core, |flow, ()| {
                execute(rt, t, flow, timers);
                done.push(flow);
            });
            STATS[me]
                .remote_batches
                .fetch_add(n as u64, Ordering::Relaxed);
        });
        for flow in done {
            reclaim(rt, h, flow);
        }
        if let Some(service) = poll {
            ep.poll(&mut |d, b| service.on_udp(d, b), &mut |t, ev| {
                on_tcp(me, rt, h, t, ev)
            });
            fire_timers(me, rt, h);
        }
    });
}

/// Home core: turns due flow timers into `Timer` events.
fn fire_timers(me: usize, rt: &Runtime, h: &mut Home) {
    if h.timers.is_empty() {
        return;
    }
    let now = crate::time::now_ns();
    // Timers re-armed before they fired leave stale entries: drop them when they pile up.
    let slots = rt.flows[me].len();
    if h.timers.len() > 2 * slots {
        h.timers.retain(|&core::cmp::Reverse((due, slot))| {
            rt.flows[me]
                .get(slot as usize)
                .is_some_and(|f| f.lock().timer_due == Some(due))
        });
    }
    while let Some(&core::cmp::Reverse((due, slot))) = h.timers.peek() {
        if due > now {
            break;
        }
        h.timers.pop();
        let Some(flow) = FlowId::new(CoreId(me as u8), slot) else {
            continue;
        };
        {
            let mut fd = rt.flow(flow).lock();
            if fd.timer_due != Some(due) || fd.conn.is_none() {
                continue; // replaced, or the connection is gone
            }
            fd.timer_due = None;
            fd.events.push_back(FlowEvent::Timer);
        }
        rt.sched.notify(&mut h.core, flow, 1);
    }
}

/// Home core: executes a flow's calls on its socket (send what fits, close when all is
/// sent), arms its timer, and refills its inbox from the socket if it had to stop reading.
fn execute(
    rt: &Runtime,
    t: &mut TcpEndpoint,
    flow: FlowId,
    timers: &mut alloc::collections::BinaryHeap<core::cmp::Reverse<(u64, u32)>>,
) {
    let mut fd = rt.flow(flow).lock();
    let Some(conn) = fd.conn else {
        fd.tx.clear(); // the connection is gone: nothing can be sent any more
        fd.timer_req = None;
        return;
    };
    if let Some(due) = fd.timer_req.take() {
        fd.timer_due = Some(due);
        timers.push(core::cmp::Reverse((due, flow.slot())));
    }
    drain_tx(t, conn, &mut fd);
    // A send was cut short, but the backlog has drained meanwhile (the home core moved it to
    // the socket while the flow ran, and its acknowledgement may be in already, so no socket
    // `Sent` event is coming): deliver `Sent` now, or the app waits for ever.
    if fd.want_sent && fd.tx.len() <= FLOW_TX_MAX / 2 {
        fd.want_sent = false;
        fd.events.push_back(FlowEvent::Sent);
        let _ = rt.sched.flow(flow).notify(1);
    }
    if fd.rx_blocked && fill_rx(t, conn, &mut fd) {
        // The flow is still busy (released after this): the event is counted and the release
        // makes it ready again.
        fd.events.push_back(FlowEvent::Received);
        let _ = rt.sched.flow(flow).notify(1);
    }
}

fn drain_tx(t: &mut TcpEndpoint, conn: ConnId, fd: &mut FlowData) {
    if !fd.tx.is_empty() {
        match t.send(conn, &fd.tx) {
            Ok(n) => {
                fd.tx.drain(..n);
            }
            Err(_) => fd.tx.clear(),
        }
    }
    if fd.tx.is_empty() && fd.close {
        fd.close = false;
        let _ = t.close(conn);
    }
}

/// Copies received bytes from the socket into the flow's inbox (up to [`FLOW_RX_MAX`]).
/// Returns whether any were copied.
fn fill_rx(t: &mut TcpEndpoint, conn: ConnId, fd: &mut FlowData) -> bool {
    let mut copied = false;
    loop {
        let room = FLOW_RX_MAX.saturating_sub(fd.rx.len());
        let Ok(data) = t.recv(conn) else { break };
        if data.is_empty() {
            fd.rx_blocked = false;
            break;
        }
        if room == 0 {
            fd.rx_blocked = true;
            break;
        }
        let n = data.len().min(room);
        fd.rx.extend_from_slice(&data[..n]);
        let _ = t.recv_done(conn, n);
        copied = true;
    }
    copied
}

/// Frees the slot of a flow whose `Closed` event has run, once it is idle.
fn reclaim(rt: &Runtime, h: &mut Home, flow: FlowId) {
    let mut fd = rt.flow(flow).lock();
    if fd.dead && rt.sched.flow(flow).state() == ferrix_sched::State::Idle {
        fd.dead = false;
        fd.close = false;
        fd.rx_blocked = false;
        fd.want_sent = false;
        fd.timer_req = None;
        fd.timer_due = None;
        fd.user = 0;
        fd.conn = None;
        fd.events.clear();
        fd.rx.clear();
        fd.tx.clear();
        h.free.push(flow.slot());
    }
}

/// Home core: one TCP event from smoltcp, turned into a flow event.
fn on_tcp(me: usize, rt: &Runtime, h: &mut Home, t: &mut TcpEndpoint, ev: TcpEvent) {
    let core = CoreId(me as u8);
    let flow_of = |h: &Home, c: ConnId| {
        h.by_conn
            .get(c.slot())
            .copied()
            .flatten()
            .and_then(|s| FlowId::new(core, s))
    };
    let (flow, event) = match ev {
        TcpEvent::Accepted(c) => {
            let Some(slot) = h.free.pop() else {
                STATS[me].refused.fetch_add(1, Ordering::Relaxed);
                let _ = t.abort(c);
                return;
            };
            if let Some(e) = h.by_conn.get_mut(c.slot()) {
                *e = Some(slot);
            }
            let Some(f) = FlowId::new(core, slot) else {
                return;
            };
            rt.flow(f).lock().conn = Some(c);
            (f, FlowEvent::Accepted)
        }
        TcpEvent::Received(c, _) => {
            let Some(f) = flow_of(h, c) else { return };
            if !fill_rx(t, c, &mut rt.flow(f).lock()) {
                return;
            }
            (f, FlowEvent::Received)
        }
        TcpEvent::Sent(c, _) => {
            let Some(f) = flow_of(h, c) else { return };
            let mut fd = rt.flow(f).lock();
            drain_tx(t, c, &mut fd);
            if !(fd.want_sent && fd.tx.len() <= FLOW_TX_MAX / 2) {
                return;
            }
            fd.want_sent = false;
            drop(fd);
            (f, FlowEvent::Sent)
        }
        TcpEvent::PeerClosed(c) => {
            let Some(f) = flow_of(h, c) else { return };
            (f, FlowEvent::PeerClosed)
        }
        TcpEvent::Closed(c) => {
            let Some(f) = flow_of(h, c) else { return };
            if let Some(e) = h.by_conn.get_mut(c.slot()) {
                *e = None;
            }
            rt.flow(f).lock().conn = None;
            (f, FlowEvent::Closed)
        }
        TcpEvent::Connected(_) => return,
    };
    rt.flow(flow).lock().events.push_back(event);
    rt.sched.notify(&mut h.core, flow, 1);
}

/// The IPI hook: on a core serving TCP and interrupted in app code, run its remote calls and
/// its network stack. (A core in the kernel has interrupts off, so this never runs there.)
pub(crate) fn on_ipi(me: usize) {
    let Some(rt) = RUNTIME.get() else { return };
    if !ACTIVE.get(me).is_some_and(|a| a.load(Ordering::Acquire)) {
        return;
    }
    if rt.sched.core(CoreId(me as u8)).mode.get() != CoreMode::App {
        return;
    }
    STATS[me].ipi_runs.fetch_add(1, Ordering::Relaxed);
    home_work(me, rt, Some(&Deferred));
}

/// Datagrams a poll from the IPI handler received: the app's code it interrupted may hold the
/// locks its UDP handler takes, so they are copied here (at most [`DEFERRED_MAX`] per core,
/// the rest dropped and counted) and handed to [`TcpService::on_udp`] by the core's next
/// poll from its loop.
static DEFERRED: [spin::Mutex<Vec<DeferredDatagram>>; MAX_CPUS] =
    [const { spin::Mutex::new(Vec::new()) }; MAX_CPUS];
/// Whether a core's [`DEFERRED`] may hold datagrams (set under its lock when one is queued,
/// cleared by the owner when it takes them), so a loop poll need not take the lock.
static DEFERRED_ANY: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];
const DEFERRED_MAX: usize = 256;
/// A datagram and a copy of its payload.
type DeferredDatagram = (super::Datagram, Vec<u8>);
/// Datagrams dropped because [`DEFERRED`] was full.
static DEFERRED_DROPS: AtomicU64 = AtomicU64::new(0);

/// The UDP handler of polls from the IPI handler: copies into [`DEFERRED`].
struct Deferred;

impl TcpService for Deferred {
    fn on_event(&self, _: &mut Flow<'_>, _: FlowEvent) {}

    fn on_udp(&self, d: &super::Datagram, buf: &mut [u8]) -> Option<usize> {
        let me = crate::percpu::core_id();
        let mut q = DEFERRED.get(me)?.lock();
        if q.len() >= DEFERRED_MAX {
            DEFERRED_DROPS.fetch_add(1, Ordering::Relaxed);
        } else {
            q.push((*d, buf.get(..d.len).unwrap_or_default().to_vec()));
            DEFERRED_ANY[me].store(true, Ordering::Release);
        }
        None
    }
}

/// Hands this core's deferred datagrams to the app (interrupts off, endpoint free); replies
/// go out with `send_udp` from the port the datagram came to.
fn run_deferred(me: usize, service: &dyn TcpService) {
    if !DEFERRED_ANY
        .get(me)
        .is_some_and(|a| a.load(Ordering::Acquire))
    {
        return;
    }
    let pending = {
        let Some(q) = DEFERRED.get(me) else { return };
        let mut q = q.lock();
        DEFERRED_ANY[me].store(false, Ordering::Relaxed);
        if q.is_empty() {
            return;
        }
        core::mem::take(&mut *q)
    };
    let mut buf = alloc::vec![0u8; super::MAX_UDP_PAYLOAD];
    for (d, bytes) in pending {
        let n = bytes.len().min(buf.len());
        buf[..n].copy_from_slice(&bytes[..n]);
        if let Some(r) = service.on_udp(&d, &mut buf) {
            let _ = super::send_udp(d.dst.port(), d.src, &buf[..r.min(buf.len())]);
        }
    }
}

/// Datagrams dropped because the IPI handler's deferral queue of their core was full.
pub fn deferred_udp_drops() -> u64 {
    DEFERRED_DROPS.load(Ordering::Relaxed)
}
