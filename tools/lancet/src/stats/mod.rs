//! The statistics behind Lancet's self-correcting methodology (thesis 4.3-4.4): Anderson-Darling
//! for inter-arrivals, Spearman rank autocorrelation for iid-ness, Augmented Dickey-Fuller for
//! stationarity, and order-statistic confidence intervals for percentiles. Pure functions,
//! checked against SciPy / statsmodels reference numbers in `tests.rs`.

pub mod adf;
pub mod anderson;
pub mod quantile;
pub mod spearman;
pub mod special;

#[cfg(test)]
mod reference_data;
#[cfg(test)]
mod tests;

/// Why a statistic could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    #[error("need at least {need} samples, got {got}")]
    TooFew { need: usize, got: usize },
    #[error("degenerate data: {0}")]
    Degenerate(&'static str),
    #[error("no Anderson-Darling test for distribution '{0}' (no continuous CDF)")]
    Unsupported(String),
}
