//! The thesis's numbers this bench is read against (shared/spec/numbers.md, "ZygOS (chapter 6)";
//! thesis 6.6.1, figures 6.6-6.8).

use serde::Serialize;

/// The reference numbers.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Reference {
    /// Cores (hyperthreads) of the thesis's server.
    pub cores: usize,
    /// ZygOS max load @ SLO (p99 <= 10·S̄), exponential S̄ = 10 µs, as a fraction of M/G/16/FCFS's.
    pub zygos_fraction_10us: f64,
    /// The same at S̄ = 25 µs.
    pub zygos_fraction_25us: f64,
    /// Peak steal rate without IPIs, fraction of events (measured).
    pub steal_rate_no_ipi: f64,
    /// The same in the thesis's discrete-event simulation.
    pub steal_rate_no_ipi_sim: f64,
    /// At most one IPI per core per this many ns.
    pub ipi_min_interval_ns: u64,
}

/// Thesis 6.6.1: 16 hyperthreads, 10 GbE.
pub const REFERENCE: Reference = Reference {
    cores: 16,
    zygos_fraction_10us: 0.75,
    zygos_fraction_25us: 0.88,
    steal_rate_no_ipi: 0.33,
    steal_rate_no_ipi_sim: 0.35,
    ipi_min_interval_ns: ferrix_sched::ipi::REFERENCE_MIN_INTERVAL_NS,
};
