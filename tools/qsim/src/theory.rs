//! Closed forms the simulator is checked against: M/M/1, M/M/n (Erlang C, sojourn-time tail),
//! M/G/1 (Pollaczek-Khinchine), the partitioned-FCFS max load at an SLO, and the SLO-aware flow
//! control load limit of thesis 8.3. Time unit: mean service time S̄ = 1 unless a function takes
//! one.

/// M/M/1 mean wait in queue (S̄ = 1): ρ/(1-ρ).
pub fn mm1_mean_wait(rho: f64) -> f64 {
    rho / (1.0 - rho)
}

/// M/M/1 sojourn-time q-quantile (S̄ = 1): the sojourn is Exp(1-ρ), so -ln(1-q)/(1-ρ).
pub fn mm1_sojourn_quantile(rho: f64, q: f64) -> f64 {
    -(1.0 - q).ln() / (1.0 - rho)
}

/// Erlang C: probability that an arrival waits in M/M/n at per-server load ρ.
pub fn erlang_c(n: usize, rho: f64) -> f64 {
    let a = n as f64 * rho; // offered traffic in Erlangs
    // Sum a^k/k! for k < n, computed with running terms to avoid overflow.
    let mut term = 1.0;
    let mut sum = 0.0;
    for k in 0..n {
        if k > 0 {
            term *= a / k as f64;
        }
        sum += term;
    }
    let last = term * a / n as f64; // a^n / n!
    let top = last / (1.0 - rho);
    top / (sum + top)
}

/// M/M/n mean wait (S̄ = 1): C(n, ρ) / (n(1-ρ)).
pub fn mmn_mean_wait(n: usize, rho: f64) -> f64 {
    erlang_c(n, rho) / (n as f64 * (1.0 - rho))
}

/// M/M/n sojourn-time tail P[T > t] (S̄ = 1): T = W + S with W = 0 w.p. 1-C, else Exp(θ),
/// θ = n(1-ρ), and S ~ Exp(1).
pub fn mmn_sojourn_tail(n: usize, rho: f64, t: f64) -> f64 {
    let c = erlang_c(n, rho);
    let theta = n as f64 * (1.0 - rho);
    let waited = if (theta - 1.0).abs() < 1e-9 {
        (1.0 + t) * (-t).exp()
    } else {
        (theta * (-t).exp() - (-theta * t).exp()) / (theta - 1.0)
    };
    (1.0 - c) * (-t).exp() + c * waited
}

/// M/M/n sojourn-time q-quantile by bisection on the tail.
pub fn mmn_sojourn_quantile(n: usize, rho: f64, q: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, 1.0);
    while mmn_sojourn_tail(n, rho, hi) > 1.0 - q {
        hi *= 2.0;
    }
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if mmn_sojourn_tail(n, rho, mid) > 1.0 - q {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Highest load at which M/M/n's p-quantile sojourn meets `slo` (S̄ = 1): 96.8 % for n = 16,
/// SLO 10, p = 0.99 (numbers.md "Queueing-model facts").
pub fn mmn_max_load(n: usize, slo: f64, q: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, 1.0 - 1e-12);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if mmn_sojourn_quantile(n, mid, q) <= slo {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}

/// n×M/M/1 with random assignment is n independent M/M/1s: max load 1 - ln(1/(1-q))/slo
/// (53.9 % for SLO 10 at p99; numbers.md).
pub fn partitioned_mm1_max_load(slo: f64, q: f64) -> f64 {
    1.0 + (1.0 - q).ln() / slo
}

/// Pollaczek-Khinchine M/G/1 mean wait (thesis eq. 8.1): ½·ρ·Ts/(1-ρ)·(1 + (σ/Ts)²).
pub fn mg1_mean_wait(rho: f64, ts: f64, sigma: f64) -> f64 {
    0.5 * rho * ts / (1.0 - rho) * (1.0 + (sigma / ts).powi(2))
}

/// SLO-aware flow control (thesis 8.3, eq. 8.1-8.2): the load at which an M/G/1's p-quantile
/// wait reaches `tw_slo`, taking the heavy-traffic wait as exponential with mean
/// β = -tw_slo / ln(1-p) and solving eq. 8.1 for ρ.
pub fn flow_control_max_load(ts: f64, sigma: f64, tw_slo: f64, p: f64) -> f64 {
    let beta = -tw_slo / (1.0 - p).ln();
    let k = 0.5 * ts * (1.0 + (sigma / ts).powi(2));
    // k·ρ/(1-ρ) = β  =>  ρ = β / (β + k)
    beta / (beta + k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erlang_c_known_values() {
        // n = 1: C = ρ.
        assert!((erlang_c(1, 0.7) - 0.7).abs() < 1e-12);
        // n = 2, a = 1 (ρ = 0.5): C = 1/3.
        assert!((erlang_c(2, 0.5) - 1.0 / 3.0).abs() < 1e-12);
        // M/M/1 tail is exponential.
        assert!((mmn_sojourn_tail(1, 0.5, 2.0) - (-1.0f64).exp()).abs() < 1e-9);
    }

    #[test]
    fn thesis_max_loads() {
        // numbers.md, "Queueing-model facts": partitioned 53.9 % (1 - ln(100)/10), centralized
        // 96.8 % (M/M/16 sojourn-time tail) for exp, n = 16, SLO 10·S̄ at p99.
        assert!((partitioned_mm1_max_load(10.0, 0.99) - 0.5395).abs() < 1e-3);
        let c = mmn_max_load(16, 10.0, 0.99);
        assert!((c - 0.968).abs() < 0.0015, "{c}");
    }

    #[test]
    fn flow_control_closed_form() {
        // numbers.md, last bullet of "Queueing-model facts" (thesis 8.3): Ts = 10 fixed,
        // Twslo = 100 at p99 -> the WSLO is violated at ρ ≈ 0.81.
        let rho = flow_control_max_load(10.0, 0.0, 100.0, 0.99);
        assert!((rho - 0.81).abs() < 0.005, "{rho}");
        // And it is consistent with eq. 8.1 at that load.
        let beta = -100.0 / (0.01f64).ln();
        assert!((mg1_mean_wait(rho, 10.0, 0.0) - beta).abs() < 1e-9);
    }
}
