//! The kernel command line: `ferrix.*` tokens configure the kernel, every other token is an
//! argument for the app (`ferrix::args()`).
//!
//! Recognised kernel options:
//! * `ferrix.cpus=N`: number of CPUs to start (the VMM knows it; both the `ferrix` command and
//!   the shim pass it). Default 1.
//! * `ferrix.bootstats`: print TSC timestamps at entry and exit (used by `ferrix bench boot`).

/// Parsed kernel options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelOptions {
    /// Requested CPU count (`ferrix.cpus`).
    pub cpus: usize,
    /// Print boot statistics (`ferrix.bootstats`).
    pub bootstats: bool,
}

/// A problem in a `ferrix.*` option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdlineError<'a> {
    /// `ferrix.cpus` is not a number in 1..=max.
    BadCpus(&'a str),
    /// An unknown `ferrix.` option.
    Unknown(&'a str),
}

impl Default for KernelOptions {
    fn default() -> Self {
        KernelOptions {
            cpus: 1,
            bootstats: false,
        }
    }
}

/// Parses the kernel options out of `cmdline`; `max_cpus` bounds `ferrix.cpus`.
pub fn parse(cmdline: &str, max_cpus: usize) -> Result<KernelOptions, CmdlineError<'_>> {
    let mut opts = KernelOptions::default();
    for tok in cmdline.split_ascii_whitespace() {
        let Some(opt) = tok.strip_prefix("ferrix.") else {
            continue;
        };
        match opt.split_once('=') {
            Some(("cpus", v)) => match v.parse::<usize>() {
                Ok(n) if (1..=max_cpus).contains(&n) => opts.cpus = n,
                _ => return Err(CmdlineError::BadCpus(tok)),
            },
            None if opt == "bootstats" => opts.bootstats = true,
            _ => return Err(CmdlineError::Unknown(tok)),
        }
    }
    Ok(opts)
}

/// The app's arguments: every token that is not a `ferrix.*` kernel option.
pub fn app_args(cmdline: &str) -> impl Iterator<Item = &str> {
    cmdline
        .split_ascii_whitespace()
        .filter(|t| !t.starts_with("ferrix."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_when_empty() {
        assert_eq!(parse("", 64), Ok(KernelOptions::default()));
    }

    #[test]
    fn cpus_and_bootstats() {
        let o = parse("x=1 ferrix.cpus=4  ferrix.bootstats y", 64).unwrap();
        assert_eq!(
            o,
            KernelOptions {
                cpus: 4,
                bootstats: true
            }
        );
    }

    #[test]
    fn bad_cpus_rejected() {
        assert_eq!(
            parse("ferrix.cpus=0", 64),
            Err(CmdlineError::BadCpus("ferrix.cpus=0"))
        );
        assert_eq!(
            parse("ferrix.cpus=65", 64),
            Err(CmdlineError::BadCpus("ferrix.cpus=65"))
        );
        assert_eq!(
            parse("ferrix.cpus=x", 64),
            Err(CmdlineError::BadCpus("ferrix.cpus=x"))
        );
    }

    #[test]
    fn unknown_option_rejected() {
        assert_eq!(
            parse("ferrix.nope", 64),
            Err(CmdlineError::Unknown("ferrix.nope"))
        );
    }

    #[test]
    fn app_args_skip_kernel_options() {
        let v: Vec<_> = app_args(" a ferrix.cpus=2 b=c  ").collect();
        assert_eq!(v, ["a", "b=c"]);
    }
}
