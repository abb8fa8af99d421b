//! What the clients send: an open-loop Poisson stream (the aggregate of Lancet's clients),
//! the request mix, and each request's service time, all drawn from one seeded generator.

use ferrix_raft::rng::SplitMix;

use super::clock::{Time, US};

/// The application's CPU time per request.
#[derive(Clone, Copy, Debug)]
pub enum Service {
    /// Always this long.
    Fixed(Time),
    /// `short`, or `long` with probability `p_long`.
    Bimodal {
        short: Time,
        long: Time,
        p_long: f64,
    },
}

impl Service {
    /// Thesis 12.7.3: 90 % short, 10 % ten times longer, mean `mean`.
    pub fn bimodal_mean(mean: Time) -> Service {
        // 0.9 s + 0.1 * 10 s = 1.9 s.
        let short = (mean as f64 / 1.9).round() as Time;
        Service::Bimodal {
            short,
            long: 10 * short,
            p_long: 0.1,
        }
    }

    /// The mean service time.
    pub fn mean(&self) -> f64 {
        match *self {
            Service::Fixed(s) => s as f64,
            Service::Bimodal {
                short,
                long,
                p_long,
            } => (1.0 - p_long) * short as f64 + p_long * long as f64,
        }
    }
}

/// The load.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    /// Offered load, requests a second.
    pub rate: f64,
    /// Fraction of read-only requests (REPLICATED_ROUTE_NO_SE).
    pub read_only: f64,
    pub service: Service,
    /// Request body and reply payload sizes.
    pub request_bytes: usize,
    pub reply_bytes: usize,
}

impl Workload {
    /// The thesis's baseline: S = 1 µs fixed, 24-byte requests, 8-byte replies, no reads.
    pub fn baseline(rate: f64) -> Workload {
        Workload {
            rate,
            read_only: 0.0,
            service: Service::Fixed(US),
            request_bytes: 24,
            reply_bytes: 8,
        }
    }
}

/// One generated request.
#[derive(Clone, Copy, Debug)]
pub struct Draw {
    pub gap: Time,
    pub read_only: bool,
    pub service: Time,
}

/// The clients' generator.
pub struct Clients {
    rng: SplitMix,
    w: Workload,
}

impl Clients {
    pub fn new(w: Workload, seed: u64) -> Clients {
        Clients {
            rng: SplitMix::new(seed),
            w,
        }
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The next request: time since the previous one (exponential), kind, service time.
    pub fn next(&mut self) -> Draw {
        let gap = -(1.0 - self.uniform()).ln() / self.w.rate * 1e12;
        let read_only = self.uniform() < self.w.read_only;
        let service = match self.w.service {
            Service::Fixed(s) => s,
            Service::Bimodal {
                short,
                long,
                p_long,
            } => {
                if self.uniform() < p_long {
                    long
                } else {
                    short
                }
            }
        };
        Draw {
            gap: gap as Time,
            read_only,
            service,
        }
    }
}
