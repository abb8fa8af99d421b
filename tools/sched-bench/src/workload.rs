//! The precomputed open-loop workload of one point: Poisson arrivals, each request on a random
//! flow, each flow homed on a core, each core's arrivals a time-sorted "NIC ring".
//!
//! Everything is drawn before the clock starts, so no generator thread competes with the
//! simulated cores for the host's CPUs. Arrival gaps and service times come from one seeded
//! stream and flows from another, so every policy and every load of a sweep sees the same
//! requests, only stretched in time (common random numbers: the policy comparison is not
//! blurred by different draws).

use ferrix_dist::rand::Rng as _;
use ferrix_dist::{ArrivalSpec, Shape};
use ferrix_sched::{CoreId, FlowId};

use crate::Error;
use crate::options::Steering;

/// One request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request {
    /// Scheduled arrival, ns after the run's origin.
    pub arrival_ns: u64,
    /// CPU time of its event, ns.
    pub service_ns: u64,
    /// Index of its flow in [`Workload::flows`].
    pub flow: u32,
}

/// The requests of one point and where they land.
#[derive(Debug)]
pub(crate) struct Workload {
    /// In arrival order; a request's index is its id.
    pub requests: Vec<Request>,
    /// Each flow's scheduler id (home core and slot).
    pub flows: Vec<FlowId>,
    /// Per core, the indices of the requests its NIC receives, in arrival order.
    pub rings: Vec<Vec<u32>>,
    /// The most flows any core is home to (sizes the scheduler's per-core tables).
    pub max_flows_per_core: usize,
}

/// Time before the first arrival, so every thread is spinning when requests start coming.
pub(crate) const LEAD_NS: u64 = 2_000_000;

/// Parameters of [`Workload::generate`].
#[derive(Debug, Clone)]
pub(crate) struct Spec<'a> {
    pub cores: usize,
    pub flows: usize,
    pub steering: Steering,
    pub service: &'a Shape,
    pub mean_ns: f64,
    /// Arrivals per ns.
    pub rate_per_ns: f64,
    pub requests: usize,
    pub seed: u64,
}

/// SplitMix64 finaliser: seeds the per-flow home draw of [`Steering::Hashed`].
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Workload {
    /// Draws the requests of `spec`.
    pub fn generate(spec: &Spec<'_>) -> Result<Self, Error> {
        let homes: Vec<usize> = (0..spec.flows)
            .map(|f| match spec.steering {
                Steering::Balanced => f % spec.cores,
                Steering::Hashed => (mix(spec.seed ^ mix(f as u64)) % spec.cores as u64) as usize,
                Steering::AllOn(c) => usize::from(c),
            })
            .collect();
        let mut next_slot = vec![0u32; spec.cores];
        let flows = homes
            .iter()
            .map(|&h| {
                let slot = next_slot[h];
                next_slot[h] += 1;
                FlowId::new(CoreId(h as u8), slot)
                    .ok_or_else(|| Error::BadOption("too many flows on one core".into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let max_flows_per_core = next_slot.iter().copied().max().unwrap_or(1).max(1) as usize;

        let mut rng = ferrix_dist::rng(spec.seed);
        let mut flow_rng = ferrix_dist::rng(spec.seed ^ 0x5eed_f10e_0000_0001);
        let mut gaps = ArrivalSpec::Poisson.with_rate(spec.rate_per_ns)?;
        let service = spec.service.with_mean(spec.mean_ns)?;
        let mut now = LEAD_NS as f64;
        let mut requests = Vec::with_capacity(spec.requests);
        let mut rings = vec![Vec::new(); spec.cores];
        for idx in 0..spec.requests {
            now += gaps.next_gap(&mut rng);
            let service_ns = service.sample(&mut rng).round().max(0.0) as u64;
            let flow = flow_rng.random_range(0..spec.flows) as u32;
            rings[homes[flow as usize]].push(idx as u32);
            requests.push(Request {
                arrival_ns: now.round() as u64,
                service_ns,
                flow,
            });
        }
        Ok(Self {
            requests,
            flows,
            rings,
            max_flows_per_core,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(steering: Steering) -> Spec<'static> {
        static EXP: Shape = Shape::Exponential;
        Spec {
            cores: 2,
            flows: 8,
            steering,
            service: &EXP,
            mean_ns: 10_000.0,
            rate_per_ns: 1e-4,
            requests: 1_000,
            seed: 3,
        }
    }

    #[test]
    fn rings_partition_the_requests_in_arrival_order() {
        let w = Workload::generate(&spec(Steering::Balanced)).expect("valid spec");
        let mut all: Vec<u32> = w.rings.concat();
        all.sort_unstable();
        assert_eq!(all, (0..1_000).collect::<Vec<u32>>());
        for (core, ring) in w.rings.iter().enumerate() {
            assert!(ring.windows(2).all(|p| {
                w.requests[p[0] as usize].arrival_ns <= w.requests[p[1] as usize].arrival_ns
            }));
            for &r in ring {
                let flow = w.flows[w.requests[r as usize].flow as usize];
                assert_eq!(flow.home().index(), core);
            }
        }
        assert_eq!(w.max_flows_per_core, 4);
    }

    #[test]
    fn all_on_puts_every_flow_on_one_core() {
        let w = Workload::generate(&spec(Steering::AllOn(1))).expect("valid spec");
        assert!(w.rings[0].is_empty());
        assert_eq!(w.rings[1].len(), 1_000);
        assert_eq!(w.max_flows_per_core, 8);
    }

    #[test]
    fn same_seed_same_stream_stretched_by_load() {
        let a = Workload::generate(&spec(Steering::Hashed)).expect("valid spec");
        let mut half = spec(Steering::Hashed);
        half.rate_per_ns /= 2.0;
        let b = Workload::generate(&half).expect("valid spec");
        for (x, y) in a.requests.iter().zip(&b.requests) {
            assert_eq!((x.service_ns, x.flow), (y.service_ns, y.flow));
            let (gx, gy) = (x.arrival_ns - LEAD_NS, y.arrival_ns - LEAD_NS);
            assert!((gy as f64 - 2.0 * gx as f64).abs() <= 2.0);
        }
    }
}
