//! The scheduler shared by all cores: per-core shuffle queues, flow tables, remote-syscall
//! queues, modes and IPI limiters, plus each core's private [`HomeCore`] state.
//!
//! This is the glue the kernel drives; every method is one step of thesis figure 6.4:
//! [`Sched::notify`] (step 2, TCP input made events), [`Sched::next_local`] /
//! [`Sched::steal`] (step 3 / a, take a ready flow), [`Sched::complete_local`] (the home core
//! ran the events and their calls), [`Sched::complete_stolen`] (step b, a thief sends the calls
//! home) and [`Sched::run_remote`] (the home core runs them and releases the flows).

use crate::flow::{FlowState, Transition};
use crate::flow_id::{CoreId, FlowId, MAX_CORES, MAX_FLOWS_PER_CORE};
use crate::idle::PendingView;
use crate::ipi::{self, Clock, CoreMode, IpiDecision, IpiReason, ModeCell, RateLimiter};
use crate::overflow::Overflow;
use crate::policy::Policy;
use crate::remote::{RemoteBatch, RemoteQueue};
use crate::shuffle::ShuffleQueue;
use alloc::boxed::Box;
use alloc::vec::Vec;

/// Sizes and knobs, from the kernel command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Number of cores (1..=[`MAX_CORES`]).
    pub cores: usize,
    /// Flows each core can be home to (its flow table and shuffle queue are sized for it).
    pub flows_per_core: usize,
    /// The policy.
    pub policy: Policy,
    /// At most one IPI per core per this many nanoseconds.
    pub ipi_min_interval_ns: u64,
}

impl Config {
    /// `cores` cores of `flows_per_core` flows, policy zygos, the reference IPI rate limit.
    pub fn new(cores: usize, flows_per_core: usize) -> Self {
        Self {
            cores,
            flows_per_core,
            policy: Policy::Zygos,
            ipi_min_interval_ns: ipi::REFERENCE_MIN_INTERVAL_NS,
        }
    }
}

/// What one core shares with the others.
#[derive(Debug)]
pub struct CoreShared<C> {
    /// Ready flows homed here.
    pub shuffle: ShuffleQueue,
    /// Thieves' calls for flows homed here.
    pub remote: RemoteQueue<C>,
    /// The flows homed here, by slot.
    pub flows: Box<[FlowState]>,
    /// What this core is doing.
    pub mode: ModeCell,
    /// IPIs towards this core.
    pub ipi: RateLimiter,
}

/// One core's private scheduler state (not shared: the kernel keeps it in the per-CPU area).
#[derive(Debug)]
pub struct HomeCore<C> {
    /// The core.
    pub core: CoreId,
    overflow: Overflow,
    drained: Vec<RemoteBatch<C>>,
}

impl<C> HomeCore<C> {
    /// Ready flows the shuffle queue refused, waiting to be pushed.
    pub fn overflowed(&self) -> usize {
        self.overflow.len()
    }
}

/// A flow taken for running: the caller owns it and `events` events from the front of its queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The flow.
    pub flow: FlowId,
    /// How many events the owner takes.
    pub events: u64,
}

/// The whole scheduler, shared by every core (`Sync`).
#[derive(Debug)]
pub struct Sched<C> {
    cores: Box<[CoreShared<C>]>,
    policy: Policy,
}

impl<C> Sched<C> {
    /// The shared scheduler and one [`HomeCore`] per core (hand each to its core).
    ///
    /// # Panics
    /// If `cores` or `flows_per_core` is 0 or above [`MAX_CORES`] / [`MAX_FLOWS_PER_CORE`] (a boot
    /// configuration error).
    pub fn new(config: Config) -> (Self, Vec<HomeCore<C>>) {
        assert!((1..=MAX_CORES).contains(&config.cores), "bad core count");
        assert!(
            (1..=MAX_FLOWS_PER_CORE).contains(&config.flows_per_core),
            "bad flows per core"
        );
        let cores = (0..config.cores)
            .map(|_| CoreShared {
                shuffle: ShuffleQueue::new(config.flows_per_core),
                remote: RemoteQueue::new(),
                flows: (0..config.flows_per_core)
                    .map(|_| FlowState::new())
                    .collect(),
                mode: ModeCell::default(),
                ipi: RateLimiter::new(config.ipi_min_interval_ns),
            })
            .collect();
        let homes = (0..config.cores)
            .map(|c| HomeCore {
                core: CoreId(c as u8),
                overflow: Overflow::with_capacity(config.flows_per_core),
                drained: Vec::new(),
            })
            .collect();
        (
            Self {
                cores,
                policy: config.policy,
            },
            homes,
        )
    }

    /// The policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Number of cores.
    pub fn cores(&self) -> usize {
        self.cores.len()
    }

    /// A core's shared part.
    pub fn core(&self, core: CoreId) -> &CoreShared<C> {
        &self.cores[core.index()]
    }

    /// A flow's state.
    pub fn flow(&self, flow: FlowId) -> &FlowState {
        &self.core(flow.home()).flows[flow.slot() as usize]
    }

    /// The owning core publishes what it is doing (before entering or after leaving app code).
    pub fn set_mode(&self, core: CoreId, mode: CoreMode) {
        self.core(core).mode.set(mode);
    }

    /// Home core: `n` events were appended to `flow`'s event queue.
    pub fn notify(&self, home: &mut HomeCore<C>, flow: FlowId, n: u64) {
        debug_assert_eq!(flow.home(), home.core, "notify off the home core");
        if self.flow(flow).notify(n) == Transition::Enqueue {
            self.enqueue(home, flow);
        }
    }

    fn enqueue(&self, home: &mut HomeCore<C>, flow: FlowId) {
        home.overflow
            .push(&self.core(home.core).shuffle, flow.to_raw());
    }

    /// Home core: takes the oldest ready flow of its own.
    pub fn next_local(&self, home: &mut HomeCore<C>) -> Option<Claim> {
        let queue = &self.core(home.core).shuffle;
        home.overflow.flush(queue);
        let raw = queue.pop().or_else(|| home.overflow.pop())?;
        Some(self.claim(FlowId::from_raw(raw)))
    }

    /// Thief: takes the oldest ready flow of `victim`, if the policy steals.
    pub fn steal(&self, victim: CoreId) -> Option<Claim> {
        if !self.policy.steals() {
            return None;
        }
        let raw = self.core(victim).shuffle.pop()?;
        Some(self.claim(FlowId::from_raw(raw)))
    }

    fn claim(&self, flow: FlowId) -> Claim {
        match self.flow(flow).begin() {
            Ok(events) => Claim { flow, events },
            // A flow is queued only while ready and popped once: anything else is a broken
            // invariant, and running it would break per-flow ordering.
            Err(e) => panic!("popped flow {flow:?} in state {:?}", e.found),
        }
    }

    /// Home core: it ran `flow`'s events and their calls; releases the flow (re-queues it if
    /// events arrived meanwhile).
    pub fn complete_local(&self, home: &mut HomeCore<C>, flow: FlowId) {
        debug_assert_eq!(flow.home(), home.core, "local completion off the home core");
        self.finish(home, flow);
    }

    fn finish(&self, home: &mut HomeCore<C>, flow: FlowId) {
        match self.flow(flow).finish() {
            Ok(Transition::Enqueue) => self.enqueue(home, flow),
            Ok(Transition::None) => {}
            Err(e) => panic!("finished flow {flow:?} in state {:?}", e.found),
        }
    }

    /// Thief: it ran a stolen flow's events, which made `calls` (`None`: no calls). Sends them
    /// home (or releases the flow directly when there is nothing to send and nothing arrived),
    /// and says whether to interrupt the home core.
    pub fn complete_stolen(&self, flow: FlowId, calls: Option<C>, clock: &impl Clock) -> IpiDecision
    where
        C: Default,
    {
        if calls.is_none() && self.flow(flow).try_release() {
            return IpiDecision::NotNeeded;
        }
        let home = self.core(flow.home());
        home.remote.push(RemoteBatch {
            flow,
            calls: calls.unwrap_or_default(),
        });
        ipi::decide(
            self.policy,
            home.mode.get(),
            IpiReason::RemoteCalls,
            &home.ipi,
            clock,
        )
    }

    /// Home core: runs every queued remote batch through `exec` (the calls, in order), then
    /// releases each flow. Returns how many batches ran.
    pub fn run_remote(&self, home: &mut HomeCore<C>, mut exec: impl FnMut(FlowId, C)) -> usize {
        let mut batches = core::mem::take(&mut home.drained);
        self.core(home.core).remote.drain_into(&mut batches);
        let n = batches.len();
        for batch in batches.drain(..) {
            exec(batch.flow, batch.calls);
            self.finish(home, batch.flow);
        }
        home.drained = batches;
        n
    }

    /// The sender side of an IPI for waiting packets (see [`crate::idle::Action::Ipi`]).
    pub fn ipi_for_packets(&self, target: CoreId, clock: &impl Clock) -> IpiDecision {
        let t = self.core(target);
        ipi::decide(self.policy, t.mode.get(), IpiReason::Packets, &t.ipi, clock)
    }

    /// A [`PendingView`] combining this scheduler's queues with the kernel's packet queues.
    pub fn view<'a, P: PacketView>(&'a self, packets: &'a P) -> View<'a, C, P> {
        View {
            sched: self,
            packets,
        }
    }
}

/// What only the kernel knows: packets waiting before the network stack.
pub trait PacketView {
    /// Packets wait in `core`'s software queue.
    fn sw_packets(&self, core: CoreId) -> bool;
    /// Descriptors wait in `core`'s NIC receive ring.
    fn nic(&self, core: CoreId) -> bool;
}

/// The [`PendingView`] of a [`Sched`] plus the kernel's [`PacketView`].
#[derive(Debug)]
pub struct View<'a, C, P> {
    sched: &'a Sched<C>,
    packets: &'a P,
}

impl<C, P: PacketView> PendingView for View<'_, C, P> {
    fn cores(&self) -> usize {
        self.sched.cores()
    }
    fn remote_calls(&self, core: CoreId) -> bool {
        !self.sched.core(core).remote.is_empty()
    }
    fn sw_packets(&self, core: CoreId) -> bool {
        self.packets.sw_packets(core)
    }
    fn shuffle(&self, core: CoreId) -> bool {
        !self.sched.core(core).shuffle.is_empty()
    }
    fn nic(&self, core: CoreId) -> bool {
        self.packets.nic(core)
    }
    fn mode(&self, core: CoreId) -> CoreMode {
        self.sched.core(core).mode.get()
    }
}
