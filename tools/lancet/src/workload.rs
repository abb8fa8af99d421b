//! What an agent sends: transport, application protocol, request encoding and response framing.
//!
//! Protocols (thesis 3.2, 4.5):
//! - `echo`: a fixed-size payload, echoed back.
//! - `synthetic`: 8-byte request = service time in nanoseconds (u64, little endian); the server
//!   spins that long and echoes the 8 bytes.
//! - `memcached`: ASCII `get`/`set` with a key space, a key size and a value size (TCP only).

use std::fmt;
use std::str::FromStr;

use ferrix_dist::rand::Rng as _;
use ferrix_dist::{Dist, Rng, Shape};
use serde::{Deserialize, Serialize};

/// Transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Tcp,
    Udp,
}

/// Application protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AppProto {
    Echo,
    Synthetic,
    Memcached,
}

/// Everything an agent needs to generate load (sent by the coordinator in `configure`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    /// Server address, `host:port`.
    pub target: String,
    pub transport: Transport,
    pub proto: AppProto,
    /// Connections per agent.
    pub connections: usize,
    /// Outstanding requests allowed per connection (TCP pipelining depth).
    pub outstanding: usize,
    /// Inter-arrival shape (a `ferrix-dist` spec, `exp` = Poisson).
    pub arrival: String,
    /// Service-time shape and mean (µs) for `synthetic`.
    pub service: String,
    pub service_us: f64,
    /// Echo payload size (bytes).
    pub echo_size: usize,
    /// memcached: keys, key size, value size (bytes), fraction of gets.
    pub keys: u64,
    pub key_size: usize,
    pub value_size: usize,
    pub get_ratio: f64,
    /// Test knob: send this many requests back to back at each arrival (1 = off). Exists to
    /// show that the inter-arrival check catches a bursty sender.
    pub burst: u32,
    pub seed: u64,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            target: "127.0.0.1:11211".into(),
            transport: Transport::Tcp,
            proto: AppProto::Echo,
            connections: 4,
            outstanding: 8,
            arrival: "exp".into(),
            service: "det".into(),
            service_us: 10.0,
            echo_size: 8,
            keys: 1000,
            key_size: 16,
            value_size: 64,
            get_ratio: 0.9,
            burst: 1,
            seed: 1,
        }
    }
}

/// Why a workload is unusable.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("bad distribution: {0}")]
    Dist(#[from] ferrix_dist::DistError),
    #[error("{0}")]
    Invalid(String),
}

impl Workload {
    /// Check the numbers and parse the distributions.
    pub fn validate(&self) -> Result<(Shape, Request), WorkloadError> {
        let arrival: Shape = self.arrival.parse()?;
        if self.connections == 0 || self.outstanding == 0 || self.burst == 0 {
            return Err(WorkloadError::Invalid(
                "connections, outstanding and burst must be >= 1".into(),
            ));
        }
        if self.proto == AppProto::Memcached && self.transport == Transport::Udp {
            return Err(WorkloadError::Invalid(
                "memcached is supported over TCP only".into(),
            ));
        }
        if self.proto == AppProto::Memcached && (self.keys == 0 || self.key_size < 8) {
            return Err(WorkloadError::Invalid(
                "memcached needs keys >= 1 and key size >= 8".into(),
            ));
        }
        let service: Shape = self.service.parse()?;
        Ok((
            arrival,
            Request {
                proto: self.proto,
                service: service.with_mean(self.service_us.max(1e-3))?,
                w: self.clone(),
            },
        ))
    }
}

/// Encodes requests and frames responses for one workload.
#[derive(Debug, Clone)]
pub struct Request {
    proto: AppProto,
    service: Dist,
    w: Workload,
}

impl Request {
    /// Append one request to `buf`.
    pub fn encode(&self, rng: &mut Rng, buf: &mut Vec<u8>) {
        match self.proto {
            AppProto::Echo => buf.extend(std::iter::repeat_n(b'x', self.w.echo_size.max(1))),
            AppProto::Synthetic => {
                let ns = (self.service.sample(rng) * 1000.0).round() as u64;
                buf.extend_from_slice(&ns.to_le_bytes());
            }
            AppProto::Memcached => {
                let k = rng.random_range(0..self.w.keys);
                let key = format!("{k:0width$}", width = self.w.key_size);
                if rng.random::<f64>() < self.w.get_ratio {
                    buf.extend_from_slice(format!("get {key}\r\n").as_bytes());
                } else {
                    let n = self.w.value_size;
                    buf.extend_from_slice(format!("set {key} 0 0 {n}\r\n").as_bytes());
                    buf.extend(std::iter::repeat_n(b'v', n));
                    buf.extend_from_slice(b"\r\n");
                }
            }
        }
    }

    /// Length of the first complete response in `buf`, if there is one.
    pub fn response_len(&self, buf: &[u8]) -> Option<usize> {
        match self.proto {
            AppProto::Echo => {
                let n = self.w.echo_size.max(1);
                (buf.len() >= n).then_some(n)
            }
            AppProto::Synthetic => (buf.len() >= 8).then_some(8),
            AppProto::Memcached => memcached_response_len(buf),
        }
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

/// One memcached ASCII response: a single line (`STORED`, `END`, errors) or
/// `VALUE k f n\r\n<n bytes>\r\nEND\r\n` for a single-key get.
pub fn memcached_response_len(buf: &[u8]) -> Option<usize> {
    let line = find_crlf(buf)?;
    if !buf.starts_with(b"VALUE ") {
        return Some(line + 2);
    }
    let header = std::str::from_utf8(&buf[..line]).ok()?;
    let bytes: usize = header.split_whitespace().nth(3)?.parse().ok()?;
    let total = line + 2 + bytes + 2 + 5;
    (buf.len() >= total).then_some(total)
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        })
    }
}

impl FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tcp" => Ok(Transport::Tcp),
            "udp" => Ok(Transport::Udp),
            _ => Err(format!("unknown transport '{s}'")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memcached_framing() {
        assert_eq!(memcached_response_len(b"STORED\r\nEND"), Some(8));
        assert_eq!(memcached_response_len(b"END\r\n"), Some(5));
        assert_eq!(memcached_response_len(b"VALUE k 0 3\r\nabc\r\nEN"), None);
        assert_eq!(
            memcached_response_len(b"VALUE k 0 3\r\nabc\r\nEND\r\nX"),
            Some(23)
        );
        assert_eq!(memcached_response_len(b"VALUE k 0 3"), None);
    }

    #[test]
    fn synthetic_encodes_nanoseconds() {
        let w = Workload {
            proto: AppProto::Synthetic,
            service_us: 25.0,
            ..Workload::default()
        };
        let (_, r) = w.validate().unwrap();
        let mut buf = Vec::new();
        r.encode(&mut ferrix_dist::rng(1), &mut buf);
        assert_eq!(u64::from_le_bytes(buf[..8].try_into().unwrap()), 25_000);
        assert_eq!(r.response_len(&buf), Some(8));
    }

    #[test]
    fn memcached_requests_and_validation() {
        let w = Workload {
            proto: AppProto::Memcached,
            get_ratio: 0.0,
            value_size: 4,
            key_size: 8,
            ..Workload::default()
        };
        let (_, r) = w.validate().unwrap();
        let mut buf = Vec::new();
        r.encode(&mut ferrix_dist::rng(1), &mut buf);
        let s = String::from_utf8(buf).unwrap();
        assert!(
            s.starts_with("set ") && s.ends_with(" 0 0 4\r\nvvvv\r\n"),
            "{s}"
        );
        let udp = Workload {
            transport: Transport::Udp,
            ..w
        };
        assert!(udp.validate().is_err());
    }
}
