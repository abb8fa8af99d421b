//! Which queueing model to simulate, named by a spec string in the style of the distributions
//! (`NAME` or `NAME:key=value,...`). Parameters live with the model that uses them.

use std::fmt;
use std::str::FromStr;

use crate::QsimError;

/// Options of the ZygOS model (thesis 6.4-6.6): per-core queues, idle cores steal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZygosParams {
    /// With interrupts a packet that lands on a busy core becomes stealable after `ipi_cost`
    /// (the home core pays `ipi_cost` of CPU); without them it waits until the home core finishes
    /// its current task.
    pub interrupts: bool,
    /// CPU time a thief spends per stolen request, on top of its service time.
    pub steal_cost: f64,
    /// CPU time and delay of one IPI.
    pub ipi_cost: f64,
}

/// Options of SVEN's admission-control loop (thesis 11.3.2, listing 11.1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SvenParams {
    /// Control period (the thesis: 20 ms for S̄ = 10 µs, i.e. 2000·S̄).
    pub interval: f64,
    /// Additive step of the drop rate (0.01).
    pub step: f64,
    /// Target fraction of requests under the SLO (0.99).
    pub target: f64,
}

/// A queueing model: queues, workers and the policy joining them.
#[derive(Debug, Clone, PartialEq)]
pub enum Model {
    /// M/G/n/FCFS: one queue, n workers.
    CentralFcfs,
    /// n×M/G/1/FCFS with uniformly random assignment.
    PartitionedFcfs,
    /// n×M/G/1/FCFS, requests dealt round-robin.
    RoundRobin,
    /// M/G/n/PS: n processors shared by all requests in the system.
    CentralPs,
    /// n×M/G/1/PS with random assignment.
    PartitionedPs,
    /// Join the shortest queue (requests in the system at each worker).
    Jsq,
    /// Power-of-d choices: the shorter of d random queues (PL(2) for d = 2).
    PowerOfD { d: usize },
    /// JBSQ(n): a central router queue plus bounded per-worker queues of depth n; `delay` is the
    /// one-way router-server latency.
    Jbsq { depth: usize, delay: f64 },
    /// Central queue ordered by deadline = arrival + factor·service.
    Edf { factor: f64 },
    /// Central queue ordered by service time (known in advance).
    Sjf,
    /// Cycle-stealing central queue: `fast` workers serve only short requests, the rest serve
    /// both, long first. Short means service <= `threshold`·S̄. `fast` = None: split by CPU need.
    Cscq { fast: Option<usize>, threshold: f64 },
    /// ZygOS: per-core queues with work stealing.
    Zygos(ZygosParams),
    /// SVEN admission control in front of M/G/n/FCFS.
    Sven(SvenParams),
}

impl Model {
    /// Short name used in tables and legends.
    pub fn label(&self) -> String {
        match self {
            Model::CentralFcfs => "M/G/n/FCFS".into(),
            Model::PartitionedFcfs => "n×M/G/1/FCFS".into(),
            Model::RoundRobin => "round-robin".into(),
            Model::CentralPs => "M/G/n/PS".into(),
            Model::PartitionedPs => "n×M/G/1/PS".into(),
            Model::Jsq => "JSQ".into(),
            Model::PowerOfD { d } => format!("PL({d})"),
            Model::Jbsq { depth, delay } if *delay == 0.0 => format!("JBSQ({depth})"),
            Model::Jbsq { depth, delay } => format!("JBSQ({depth}) d={delay}"),
            Model::Edf { .. } => "EDF".into(),
            Model::Sjf => "SJF".into(),
            Model::Cscq { .. } => "CSCQ".into(),
            Model::Zygos(z) if z.interrupts => "ZygOS".into(),
            Model::Zygos(_) => "ZygOS-no-interrupts".into(),
            Model::Sven(_) => "SVEN+M/G/n/FCFS".into(),
        }
    }
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Model::CentralFcfs => write!(f, "mg-n-fcfs"),
            Model::PartitionedFcfs => write!(f, "partitioned-fcfs"),
            Model::RoundRobin => write!(f, "round-robin"),
            Model::CentralPs => write!(f, "mg-n-ps"),
            Model::PartitionedPs => write!(f, "partitioned-ps"),
            Model::Jsq => write!(f, "jsq"),
            Model::PowerOfD { d } => write!(f, "pl:d={d}"),
            Model::Jbsq { depth, delay } => write!(f, "jbsq:n={depth},delay={delay}"),
            Model::Edf { factor } => write!(f, "edf:factor={factor}"),
            Model::Sjf => write!(f, "sjf"),
            Model::Cscq {
                fast: Some(k),
                threshold,
            } => {
                write!(f, "cscq:fast={k},threshold={threshold}")
            }
            Model::Cscq {
                fast: None,
                threshold,
            } => write!(f, "cscq:threshold={threshold}"),
            Model::Zygos(z) => write!(
                f,
                "zygos:interrupts={},steal={},ipi={}",
                u8::from(z.interrupts),
                z.steal_cost,
                z.ipi_cost
            ),
            Model::Sven(s) => write!(
                f,
                "sven:interval={},step={},target={}",
                s.interval, s.step, s.target
            ),
        }
    }
}

impl FromStr for Model {
    type Err = QsimError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let spec = spec.trim();
        let (name, rest) = spec.split_once(':').unwrap_or((spec, ""));
        let mut p = Params::parse(name, rest)?;
        let m = match name {
            "mg-n-fcfs" | "centralized-fcfs" | "fcfs" | "single-queue" => Model::CentralFcfs,
            "partitioned-fcfs" | "n-mg1-fcfs" | "random" => Model::PartitionedFcfs,
            "round-robin" | "rr" => Model::RoundRobin,
            "mg-n-ps" | "centralized-ps" | "ps" => Model::CentralPs,
            "partitioned-ps" | "n-mg1-ps" => Model::PartitionedPs,
            "jsq" => Model::Jsq,
            "pl" | "power-of-d" | "pl2" => Model::PowerOfD {
                d: p.int("d", 2, 1)?,
            },
            "jbsq" => Model::Jbsq {
                depth: p.int("n", 2, 1)?,
                delay: p.num("delay", 0.0, |v| v >= 0.0)?,
            },
            "edf" => Model::Edf {
                factor: p.num("factor", 5.0, |v| v > 0.0)?,
            },
            "sjf" => Model::Sjf,
            "cscq" => Model::Cscq {
                fast: match p.has("fast") {
                    true => Some(p.int("fast", 0, 1)?),
                    false => None,
                },
                threshold: p.num("threshold", 1.0, |v| v > 0.0)?,
            },
            "zygos" => Model::Zygos(ZygosParams {
                interrupts: p.int("interrupts", 1, 0)? != 0,
                steal_cost: p.num("steal", 0.0, |v| v >= 0.0)?,
                ipi_cost: p.num("ipi", 0.0, |v| v >= 0.0)?,
            }),
            "sven" => Model::Sven(SvenParams {
                interval: p.num("interval", 2000.0, |v| v > 0.0)?,
                step: p.num("step", 0.01, |v| v > 0.0 && v <= 1.0)?,
                target: p.num("target", 0.99, |v| v > 0.0 && v < 1.0)?,
            }),
            _ => return Err(QsimError::UnknownModel(spec.to_owned())),
        };
        p.finish()?;
        Ok(m)
    }
}

/// `key=value` parameters of one model spec.
struct Params<'a> {
    model: &'a str,
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> Params<'a> {
    fn parse(model: &'a str, text: &'a str) -> Result<Self, QsimError> {
        let mut pairs = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| QsimError::BadModelParam {
                    model: model.to_owned(),
                    why: format!("'{item}' is not key=value"),
                })?;
            pairs.push((k.trim(), v.trim()));
        }
        Ok(Self { model, pairs })
    }

    fn has(&self, key: &str) -> bool {
        self.pairs.iter().any(|(k, _)| *k == key)
    }

    fn take(&mut self, key: &str) -> Option<&'a str> {
        let i = self.pairs.iter().position(|(k, _)| *k == key)?;
        Some(self.pairs.remove(i).1)
    }

    fn err(&self, why: String) -> QsimError {
        QsimError::BadModelParam {
            model: self.model.to_owned(),
            why,
        }
    }

    fn num(&mut self, key: &str, default: f64, ok: fn(f64) -> bool) -> Result<f64, QsimError> {
        match self.take(key) {
            None => Ok(default),
            Some(t) => match t.parse::<f64>() {
                Ok(v) if v.is_finite() && ok(v) => Ok(v),
                _ => Err(self.err(format!("bad value '{t}' for '{key}'"))),
            },
        }
    }

    fn int(&mut self, key: &str, default: usize, min: usize) -> Result<usize, QsimError> {
        match self.take(key) {
            None => Ok(default),
            Some(t) => match t.parse::<usize>() {
                Ok(v) if v >= min => Ok(v),
                _ => Err(self.err(format!("bad value '{t}' for '{key}' (integer >= {min})"))),
            },
        }
    }

    fn finish(self) -> Result<(), QsimError> {
        match self.pairs.first() {
            None => Ok(()),
            Some((k, _)) => Err(self.err(format!("no parameter '{k}'"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for s in [
            "mg-n-fcfs",
            "partitioned-fcfs",
            "round-robin",
            "mg-n-ps",
            "partitioned-ps",
            "jsq",
            "pl:d=2",
            "jbsq:n=3,delay=0.5",
            "edf:factor=5",
            "sjf",
            "cscq:fast=7,threshold=1",
            "cscq:threshold=1",
            "zygos:interrupts=0,steal=0.1,ipi=0.2",
            "sven:interval=2000,step=0.01,target=0.99",
        ] {
            let m: Model = s.parse().unwrap();
            assert_eq!(m.to_string(), s);
        }
    }

    #[test]
    fn errors_are_one_line() {
        let e = |s: &str| s.parse::<Model>().unwrap_err().to_string();
        assert!(e("lifo").starts_with("unknown model 'lifo'"));
        assert!(e("jbsq:n=0").contains("bad value '0' for 'n'"));
        assert!(e("jsq:x=1").contains("no parameter 'x'"));
        assert!(e("pl:d").contains("not key=value"));
    }
}
