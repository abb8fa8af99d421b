//! The scheduling policies, chosen at boot so one binary reproduces the thesis comparison.
//!
//! | name | steals | IPIs | thesis |
//! |---|---|---|---|
//! | `zygos` | yes | yes | ZygOS (section 6.4) |
//! | `zygos-noipi` | yes | no | the cooperative variant (section 6.4.5, figure 6.9) |
//! | `partitioned` | no | no | IX: each core serves only its own RSS queue |
//!
//! [`Policy::from_cmdline`] reads `ferrix.sched=NAME` from a kernel command line.

use core::fmt;
use core::str::FromStr;

/// How cores share work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Work stealing from shuffle queues plus IPIs to busy home cores.
    #[default]
    Zygos,
    /// Work stealing, but cooperative: never interrupts a core running application code.
    ZygosNoIpi,
    /// No stealing and no IPIs (IX-like).
    Partitioned,
}

/// The command-line key that selects the policy.
pub const CMDLINE_KEY: &str = "ferrix.sched";

impl Policy {
    /// Every policy, in the thesis's order of expected performance.
    pub const ALL: [Policy; 3] = [Policy::Zygos, Policy::ZygosNoIpi, Policy::Partitioned];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Zygos => "zygos",
            Policy::ZygosNoIpi => "zygos-noipi",
            Policy::Partitioned => "partitioned",
        }
    }

    /// Whether idle cores take ready flows from other cores' shuffle queues.
    pub fn steals(self) -> bool {
        !matches!(self, Policy::Partitioned)
    }

    /// Whether cores interrupt other cores that run application code.
    pub fn sends_ipis(self) -> bool {
        matches!(self, Policy::Zygos)
    }

    /// The policy named by the last `ferrix.sched=NAME` word of `cmdline`; the default ([`Policy::Zygos`])
    /// if there is none; an error if the name is unknown.
    pub fn from_cmdline(cmdline: &str) -> Result<Policy, UnknownPolicy> {
        let mut found = Policy::default();
        for word in cmdline.split_ascii_whitespace() {
            if let Some(value) = word
                .strip_prefix(CMDLINE_KEY)
                .and_then(|rest| rest.strip_prefix('='))
            {
                found = value.parse()?;
            }
        }
        Ok(found)
    }
}

/// A policy name that is not one of [`Policy::ALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownPolicy;

impl fmt::Display for UnknownPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown scheduling policy (expected zygos, zygos-noipi or partitioned)")
    }
}

impl core::error::Error for UnknownPolicy {}

impl FromStr for Policy {
    type Err = UnknownPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Policy::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or(UnknownPolicy)
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for p in Policy::ALL {
            assert_eq!(p.name().parse::<Policy>(), Ok(p));
            assert_eq!(p.to_string(), p.name());
        }
        assert_eq!("ix".parse::<Policy>(), Err(UnknownPolicy));
    }

    #[test]
    fn cmdline() {
        assert_eq!(Policy::from_cmdline("console=ttyS0"), Ok(Policy::Zygos));
        assert_eq!(
            Policy::from_cmdline("net=10.0.0.2 ferrix.sched=partitioned quiet"),
            Ok(Policy::Partitioned)
        );
        assert_eq!(
            Policy::from_cmdline("ferrix.sched=zygos ferrix.sched=zygos-noipi"),
            Ok(Policy::ZygosNoIpi)
        );
        assert_eq!(
            Policy::from_cmdline("ferrix.sched=fifo"),
            Err(UnknownPolicy)
        );
        assert_eq!(
            Policy::from_cmdline("ferrix.schedx=fifo"),
            Ok(Policy::Zygos)
        );
        assert_eq!(Policy::from_cmdline("sched=partitioned"), Ok(Policy::Zygos));
    }

    #[test]
    fn capabilities() {
        assert!(Policy::Zygos.steals() && Policy::Zygos.sends_ipis());
        assert!(Policy::ZygosNoIpi.steals() && !Policy::ZygosNoIpi.sends_ipis());
        assert!(!Policy::Partitioned.steals() && !Policy::Partitioned.sends_ipis());
    }
}
