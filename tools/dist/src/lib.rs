//! Random distributions for ferrix's load generation and queueing models, each parameterised by
//! its mean so that one spec string (`exp`, `bimodal-1`, `lognormal:sigma=1.0`, `file:PATH`)
//! describes a *shape* and the caller picks the scale (S̄ for service times, 1/λ for
//! inter-arrival gaps). Shared by `qsim` and, later, the Lancet load generator.
//!
//! The vocabulary follows the thesis (3.2, 6.2; shared/spec/numbers.md "Workload vocabulary").
//! Sampling is seeded and reproducible: [`Rng`] is a fixed algorithm (xoshiro256++), never an
//! OS- or version-dependent generator.
#![forbid(unsafe_code)]

pub mod arrival;
pub mod empirical;
pub mod error;
pub mod parse;
pub mod service;

/// The `rand` this crate samples with (re-exported so users share one version).
pub use rand;

pub use arrival::{ArrivalProcess, ArrivalSpec};
pub use empirical::Empirical;
pub use error::DistError;
pub use service::{Dist, Shape};

/// The random number generator every sampler here takes: fast, seedable, portable.
pub type Rng = rand_xoshiro::Xoshiro256PlusPlus;

/// A generator seeded from `seed` (the same seed always gives the same stream).
pub fn rng(seed: u64) -> Rng {
    use rand::SeedableRng;
    Rng::seed_from_u64(seed)
}
