//! Spec strings for distributions: `NAME` or `NAME:key=value,key=value`, or `file:PATH`.
//!
//! | spec | shape |
//! |---|---|
//! | `det` (`fixed`, `deterministic`) | constant |
//! | `exp` (`exponential`) | exponential |
//! | `bimodal-1`, `bimodal-2` | the thesis's bimodals |
//! | `bimodal:p=0.9,lo=0.5` | `lo`·S̄ w.p. `p`, the rest sized to keep the mean |
//! | `lognormal:sigma=1.0` | lognormal (default sigma 1) |
//! | `pareto:alpha=3` | Pareto, alpha > 1 (default 3) |
//! | `uniform:spread=1` | uniform on S̄·[1-spread, 1+spread] (default 1) |
//! | `gamma:k=2` | gamma with shape k (default 2) |
//! | `file:PATH` | empirical, values from PATH rescaled to the mean |

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use crate::{DistError, Empirical, Shape};

impl FromStr for Shape {
    type Err = DistError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let spec = spec.trim();
        if let Some(path) = spec.strip_prefix("file:") {
            return Ok(Shape::Empirical(Arc::new(Empirical::from_file(
                Path::new(path),
            )?)));
        }
        let (name, params) = split_spec(spec);
        let mut p = Params::new(name, params)?;
        let shape = match name {
            "det" | "fixed" | "deterministic" => Shape::Deterministic,
            "exp" | "exponential" => Shape::Exponential,
            "bimodal-1" | "bimodal1" | "b1" => Shape::BIMODAL_1,
            "bimodal-2" | "bimodal2" | "b2" => Shape::BIMODAL_2,
            "bimodal" => {
                let prob = p.take("p", 0.9, |v| v > 0.0 && v < 1.0, "need 0 < p < 1")?;
                let lo = p.take("lo", 0.5, |v| v >= 0.0, "need lo >= 0")?;
                if prob * lo > 1.0 {
                    return Err(DistError::BadParam {
                        param: "lo".into(),
                        value: lo.to_string(),
                        why: "p·lo must be <= 1 to keep the mean",
                    });
                }
                Shape::Bimodal {
                    p: prob,
                    lo,
                    hi: (1.0 - prob * lo) / (1.0 - prob),
                }
            }
            "lognormal" => Shape::Lognormal {
                sigma: p.take("sigma", 1.0, |v| v > 0.0 && v < 20.0, "need 0 < sigma < 20")?,
            },
            "pareto" => Shape::Pareto {
                alpha: p.take(
                    "alpha",
                    3.0,
                    |v| v > 1.0,
                    "need alpha > 1 for a finite mean",
                )?,
            },
            "uniform" => Shape::Uniform {
                spread: p.take(
                    "spread",
                    1.0,
                    |v| (0.0..=1.0).contains(&v),
                    "need 0 <= spread <= 1",
                )?,
            },
            "gamma" => Shape::Gamma {
                k: p.take("k", 2.0, |v| v > 0.0 && v.is_finite(), "need k > 0")?,
            },
            _ => return Err(DistError::UnknownShape(spec.to_owned())),
        };
        p.finish()?;
        Ok(shape)
    }
}

/// `name:rest` -> (`name`, `rest`); no colon -> (`spec`, "").
pub(crate) fn split_spec(spec: &str) -> (&str, &str) {
    spec.split_once(':').unwrap_or((spec, ""))
}

/// `key=value` pairs of one spec, consumed by name; leftovers are errors.
struct Params<'a> {
    shape: &'a str,
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> Params<'a> {
    fn new(shape: &'a str, text: &'a str) -> Result<Self, DistError> {
        let mut pairs = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = item.split_once('=').ok_or_else(|| DistError::BadParam {
                param: item.to_owned(),
                value: String::new(),
                why: "expected key=value",
            })?;
            pairs.push((k.trim(), v.trim()));
        }
        Ok(Self { shape, pairs })
    }

    fn take(
        &mut self,
        key: &str,
        default: f64,
        ok: impl Fn(f64) -> bool,
        why: &'static str,
    ) -> Result<f64, DistError> {
        let Some(i) = self.pairs.iter().position(|(k, _)| *k == key) else {
            return Ok(default);
        };
        let (_, text) = self.pairs.remove(i);
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() && ok(v) => Ok(v),
            Ok(_) => Err(DistError::BadParam {
                param: key.to_owned(),
                value: text.to_owned(),
                why,
            }),
            Err(_) => Err(DistError::BadParam {
                param: key.to_owned(),
                value: text.to_owned(),
                why: "not a number",
            }),
        }
    }

    fn finish(self) -> Result<(), DistError> {
        match self.pairs.first() {
            None => Ok(()),
            Some((k, _)) => Err(DistError::UnknownParam {
                shape: self.shape.to_owned(),
                param: (*k).to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_params() {
        assert_eq!("exp".parse::<Shape>().unwrap(), Shape::Exponential);
        assert_eq!("det".parse::<Shape>().unwrap(), Shape::Deterministic);
        assert_eq!("bimodal-1".parse::<Shape>().unwrap(), Shape::BIMODAL_1);
        assert_eq!("bimodal-2".parse::<Shape>().unwrap(), Shape::BIMODAL_2);
        assert_eq!(
            "lognormal:sigma=1.5".parse::<Shape>().unwrap(),
            Shape::Lognormal { sigma: 1.5 }
        );
        assert_eq!("gamma".parse::<Shape>().unwrap(), Shape::Gamma { k: 2.0 });
        // The generic bimodal reproduces bimodal-1's long value.
        match "bimodal:p=0.9,lo=0.5".parse::<Shape>().unwrap() {
            Shape::Bimodal { hi, .. } => assert!((hi - 5.5).abs() < 1e-9),
            s => panic!("{s:?}"),
        }
    }

    #[test]
    fn display_round_trips() {
        for spec in [
            "det",
            "exp",
            "bimodal-1",
            "bimodal-2",
            "lognormal:sigma=0.5",
            "pareto:alpha=2.5",
            "uniform:spread=0.5",
            "gamma:k=3",
        ] {
            let s: Shape = spec.parse().unwrap();
            assert_eq!(s.to_string(), spec);
            assert_eq!(s.to_string().parse::<Shape>().unwrap(), s);
        }
    }

    #[test]
    fn clear_errors() {
        let e = |s: &str| s.parse::<Shape>().unwrap_err().to_string();
        assert!(e("weibull").contains("unknown distribution 'weibull'"));
        assert!(e("lognormal:mu=1").contains("no parameter 'mu'"));
        assert!(e("pareto:alpha=1").contains("alpha > 1"));
        assert!(e("gamma:k=x").contains("not a number"));
        assert!(e("gamma:k").contains("key=value"));
        assert!(e("file:/nonexistent/x").contains("cannot read /nonexistent/x"));
    }
}
