//! The router's arguments (kernel command line, `key=value`, like synthetic's). Every value is
//! checked; the first bad one is reported in one line and the VM exits 1.

use alloc::format;
use alloc::string::String;
use core::net::{Ipv4Addr, SocketAddrV4};
use core::str::FromStr;
use ferrix::cmdline::{arg_port as port, arg_value as value};
use ferrix_router::{Balance, RouterConfig, SvenConfig};

/// What the router was asked to do.
pub struct Settings {
    /// The logic's configuration.
    pub router: RouterConfig,
    /// Where clients send REQ0s (the reference's 8000).
    pub port: u16,
    /// Where servers send FEEDBACK (the reference's 9000).
    pub feedback_port: u16,
    /// Exit 0 after this many REQ0s.
    pub exit_after: Option<u64>,
    /// Exit 0 after this long without a REQ0, once one came.
    pub idle_exit_ns: Option<u64>,
    /// `ferrix.stats` (`ferrix run --stats`): also print the server table every second.
    pub periodic_stats: bool,
}

const MS: u64 = 1_000_000;

fn mask(key: &str, v: &str) -> Result<u16, String> {
    let r = match v.strip_prefix("0x") {
        Some(h) => u16::from_str_radix(h, 16),
        None => v.parse(),
    };
    r.map_err(|_| format!("bad value for {key}: {v:?} (a 16-bit class mask, e.g. 0x2)"))
}

fn fraction(key: &str, v: &str) -> Result<f64, String> {
    match value::<f64>(key, v)? {
        x if x > 0.0 && x <= 1.0 => Ok(x),
        _ => Err(format!("bad value for {key}: {v:?} (want 0 < x <= 1)")),
    }
}

fn net(key: &str, v: &str) -> Result<(Ipv4Addr, u8), String> {
    let bad = || format!("bad value for {key}: {v:?} (want A.B.C.D/N)");
    let (ip, prefix) = v.split_once('/').ok_or_else(bad)?;
    let ip = ip.parse().map_err(|_| bad())?;
    let prefix = prefix.parse().ok().filter(|p| *p <= 32).ok_or_else(bad)?;
    Ok((ip, prefix))
}

/// Parses the app's arguments (`ferrix::args()`) and the kernel command line's `ferrix.stats`.
pub fn parse<'a>(args: impl Iterator<Item = &'a str>, cmdline: &str) -> Result<Settings, String> {
    let mut s = Settings {
        router: RouterConfig::default(),
        port: ferrix_net::r2p2::DEFAULT_PORT,
        feedback_port: ferrix_net::r2p2::ROUTER_CONTROL_PORT,
        exit_after: None,
        idle_exit_ns: None,
        periodic_stats: cmdline
            .split_ascii_whitespace()
            .any(|t| t == "ferrix.stats"),
    };
    let mut sven = SvenConfig::default();
    let mut sven_on = false;
    let mut group: Option<SocketAddrV4> = None;
    let mut group_max: usize = 128;
    for a in args {
        let Some((k, v)) = a.split_once('=') else {
            return Err(format!("unknown argument {a:?} (want key=value)"));
        };
        let r = &mut s.router;
        match k {
            "policy" => {
                r.balance = Balance::from_str(v).map_err(|e| format!("policy={v}: {e}"))?;
            }
            "port" => s.port = port(k, v)?,
            "feedback-port" => s.feedback_port = port(k, v)?,
            "queue-cap" => r.queue_cap = value(k, v)?,
            "queue-timeout-ms" => r.queue_timeout_ns = value::<u64>(k, v)?.saturating_mul(MS),
            "slot-timeout-ms" => r.slot_timeout_ns = value::<u64>(k, v)?.saturating_mul(MS),
            "server-timeout-ms" => r.server_timeout_ns = value::<u64>(k, v)?.saturating_mul(MS),
            "max-servers" => r.max_servers = value(k, v)?,
            "master" => r.master = Some(value::<SocketAddrV4>(k, v)?),
            "servers" => r.server_net = Some(net(k, v)?),
            "seed" => r.seed = value(k, v)?,
            "sven-slo-us" => {
                sven.slo_ns = value::<u64>(k, v)?.saturating_mul(1000);
                sven_on = true;
            }
            "sven-period-ms" => sven.period_ns = value::<u64>(k, v)?.max(1).saturating_mul(MS),
            "sven-step" => sven.step = fraction(k, v)?,
            "sven-percentile" => sven.percentile = fraction(k, v)?,
            "sven-no-drop" => sven.no_drop = mask(k, v)?,
            "group" => group = Some(value(k, v)?),
            "group-max" => match value::<usize>(k, v)? {
                0 => return Err(format!("bad value for {k}: 0")),
                n => group_max = n,
            },
            "exit-after" => s.exit_after = Some(value(k, v)?),
            "idle-exit-ms" => s.idle_exit_ns = Some(value::<u64>(k, v)?.saturating_mul(MS)),
            _ => return Err(format!("unknown argument {a:?}")),
        }
    }
    if s.port == s.feedback_port {
        return Err(format!(
            "port and feedback-port must differ (both {})",
            s.port
        ));
    }
    if sven_on {
        s.router.sven = Some(sven);
    }
    s.router.group = group.map(|addr| ferrix_router::GroupConfig {
        addr,
        max_in_system: group_max,
    });
    Ok(s)
}
