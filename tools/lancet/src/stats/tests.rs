//! Statistics checked against SciPy 1.17 / statsmodels 0.15 numbers (see reference_data.rs).

use super::reference_data::*;
use super::*;

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1e-300) || (a - b).abs() < 1e-14
}

macro_rules! assert_close {
    ($a:expr, $b:expr, $rel:expr) => {{
        let (a, b): (f64, f64) = ($a, $b);
        assert!(
            close(a, b, $rel),
            "{} = {} but expected {}",
            stringify!($a),
            a,
            b
        )
    }};
}

#[test]
fn special_functions_match_scipy() {
    for (p, want) in NORM_PPF_IN.iter().zip(NORM_PPF_OUT) {
        assert_close!(special::norm_ppf(*p), *want, 1e-9);
    }
    for (i, t) in T_SF_IN.iter().enumerate() {
        assert_close!(special::t_sf(*t, 7.0), T_SF_OUT_DF7[i], 1e-10);
        assert_close!(special::t_sf(*t, 198.0), T_SF_OUT_DF198[i], 1e-10);
    }
    for (x, want) in [0.1, 1.0, 2.5, 7.0].iter().zip(GAMMA_CDF_K2_5) {
        assert_close!(special::inc_gamma(2.5, *x).0, *want, 1e-11);
    }
    for (k, want) in [10, 25, 30, 45].iter().zip(BINOM_CDF_N100_P03) {
        assert_close!(special::binom_cdf(*k, 100, 0.3), *want, 1e-10);
    }
    assert_close!(special::norm_cdf(-8.0), 6.22096057427178e-16, 1e-9);
}

#[test]
fn anderson_exponential_matches_scipy() {
    let iid = anderson::exponential(AD_EXP_IID).unwrap();
    assert_close!(iid.statistic, AD_EXP_IID_A2, 1e-10);
    let crit: Vec<f64> = iid.critical.iter().map(|c| c.1).collect();
    assert_eq!(crit, AD_EXP_IID_CRIT);
    // Stephens' closed form vs SciPy's Monte Carlo p-value (20,000 resamples, sd ~ 0.003).
    assert!(
        (iid.p_value - AD_EXP_IID_P_MC).abs() < 0.02,
        "{}",
        iid.p_value
    );
    assert!(iid.passes(0.05));

    let bursty = anderson::exponential(AD_EXP_BURSTY).unwrap();
    assert_close!(bursty.statistic, AD_EXP_BURSTY_A2, 1e-10);
    assert!(bursty.p_value < 1e-4 && !bursty.passes(0.05));
    assert_close!(
        bursty.p_value.max(AD_EXP_BURSTY_P_MC),
        AD_EXP_BURSTY_P_MC,
        1.0
    );
    assert_eq!(bursty.critical.len(), AD_EXP_BURSTY_CRIT.len());
}

#[test]
fn anderson_fully_specified_matches_scipy() {
    use ferrix_dist::Shape;
    let ln = anderson::shape_cdf(&Shape::Lognormal { sigma: 0.8 }, 2.0).unwrap();
    assert_close!(
        anderson::fully_specified(AD0_LOGN, ln).unwrap().statistic,
        AD0_LOGN_A2,
        1e-9
    );
    let ga = anderson::shape_cdf(&Shape::Gamma { k: 2.0 }, 3.0).unwrap();
    assert_close!(
        anderson::fully_specified(AD0_GAMMA, ga).unwrap().statistic,
        AD0_GAMMA_A2,
        1e-9
    );
    let un = anderson::shape_cdf(&Shape::Uniform { spread: 0.5 }, 1.0).unwrap();
    let r = anderson::fully_specified(AD0_UNIF, un).unwrap();
    assert_close!(r.statistic, AD0_UNIF_A2, 1e-9);
    assert_close!(r.statistic, AD0_UNIF_GOF_A2, 1e-9);
    // Marsaglia's distribution at the classic asymptotic critical values.
    assert!((anderson::marsaglia_cdf(100_000, 2.492) - 0.95).abs() < 1e-3);
    assert!((anderson::marsaglia_cdf(100_000, 3.857) - 0.99).abs() < 1e-3);
    assert!((anderson::marsaglia_cdf(100_000, 1.933) - 0.90).abs() < 1e-3);
    // Discrete shapes are refused, not silently passed.
    assert!(matches!(
        anderson::against_shape(AD0_UNIF, &Shape::Deterministic),
        Err(StatsError::Unsupported(_))
    ));
}

#[test]
fn anderson_detects_the_wrong_shape() {
    use ferrix_dist::{Shape, rng};
    let d = Shape::Lognormal { sigma: 0.5 }.with_mean(1.0).unwrap();
    let mut r = rng(5);
    let xs: Vec<f64> = (0..2000).map(|_| d.sample(&mut r)).collect();
    assert!(
        anderson::against_shape(&xs, &Shape::Lognormal { sigma: 0.5 })
            .unwrap()
            .passes(0.01)
    );
    assert!(!anderson::exponential(&xs).unwrap().passes(0.01));
}

#[test]
fn spearman_matches_scipy() {
    for (x, rho, p) in [
        (SP_AR1, SP_AR1_RHO, SP_AR1_P),
        (SP_IID, SP_IID_RHO, SP_IID_P),
        (SP_TIES, SP_TIES_RHO, SP_TIES_P),
    ] {
        let lags = spearman::autocorrelation(x, 5).unwrap();
        for (i, l) in lags.iter().enumerate() {
            assert_close!(l.rho, rho[i], 1e-10);
            assert_close!(l.p_value, p[i], 1e-7);
        }
    }
    let ar = spearman::iid_check(SP_AR1, 10, 0.05).unwrap();
    assert!(!ar.iid);
    assert_eq!(ar.first_insignificant_lag, Some(6));
    assert!(spearman::iid_check(SP_IID, 5, 0.05).unwrap().iid);
}

#[test]
fn adf_matches_statsmodels() {
    for (x, t, p, lag, nobs, crit) in [
        (
            ADF_STAT,
            ADF_STAT_T,
            ADF_STAT_P,
            ADF_STAT_LAG,
            ADF_STAT_NOBS,
            ADF_STAT_CRIT,
        ),
        (
            ADF_RW,
            ADF_RW_T,
            ADF_RW_P,
            ADF_RW_LAG,
            ADF_RW_NOBS,
            ADF_RW_CRIT,
        ),
        (
            ADF_DRIFT,
            ADF_DRIFT_T,
            ADF_DRIFT_P,
            ADF_DRIFT_LAG,
            ADF_DRIFT_NOBS,
            ADF_DRIFT_CRIT,
        ),
    ] {
        let r = adf::adf(x).unwrap();
        assert_eq!((r.used_lag, r.nobs), (lag, nobs));
        assert_close!(r.statistic, t, 1e-8);
        assert_close!(r.p_value, p, 1e-6);
        for (got, want) in r.critical.iter().zip(crit) {
            assert_close!(*got, *want, 1e-12);
        }
    }
    assert!(adf::adf(ADF_STAT).unwrap().stationary(0.05));
    assert!(!adf::adf(ADF_RW).unwrap().stationary(0.05));
    assert!(!adf::adf(ADF_DRIFT).unwrap().stationary(0.05));
}

#[test]
fn quantile_ci_matches_scipy() {
    let mut s = CI_DATA.to_vec();
    s.sort_by(f64::total_cmp);
    for (p, conf, want) in [
        (0.5, 0.95, CI_P50),
        (0.9, 0.95, CI_P90),
        (0.99, 0.95, CI_P99),
        (0.99, 0.99, CI_P99C99),
    ] {
        let ci = quantile::order_statistic_ci(&s, p, conf);
        assert_eq!(
            (ci.low.unwrap(), ci.high.unwrap()),
            (want[0], want[1]),
            "p{p}"
        );
        assert!(ci.low.unwrap() <= ci.estimate && ci.estimate <= ci.high.unwrap());
    }
    // Too few samples for a p99 upper bound.
    let ci = quantile::order_statistic_ci(&s[..50], 0.99, 0.95);
    assert_eq!(ci.high, None);
    assert!(ci.width().is_infinite());
}

#[test]
fn thesis_ci_is_close_to_exact_for_large_n() {
    // 10,000 iid samples, p99, 95 %: ranks 9880..9921 (thesis 4.3 example) vs exact.
    let s: Vec<f64> = (1..=10_000).map(f64::from).collect();
    let t = quantile::thesis_ci(&s, 0.99, 0.95);
    let e = quantile::order_statistic_ci(&s, 0.99, 0.95);
    assert_eq!((t.low, t.high), (Some(9880.0), Some(9921.0)));
    assert!((t.low.unwrap() - e.low.unwrap()).abs() <= 2.0);
    assert!((t.high.unwrap() - e.high.unwrap()).abs() <= 2.0);
}
