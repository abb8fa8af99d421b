//! What an agent sends: transport, application protocol, request encoding and response framing.
//!
//! Protocols (thesis 3.2, 4.5):
//! - `echo`: a fixed-size payload, echoed back.
//! - `synthetic`: 8-byte request = service time in nanoseconds (u64, little endian); the server
//!   spins that long and echoes the 8 bytes.
//! - `memcached`: ASCII `get`/`set` with a key space, a key size and a value size (TCP only).
//! - `redis`: RESP `GET`/`SET` with the same key/value parameters (TCP only).
//! - `http`: HTTP/1.1 `GET` of a path, keep-alive, `Content-Length` bodies (TCP only).

use std::fmt;
use std::str::FromStr;

use ferrix_dist::rand::Rng as _;
use ferrix_dist::{Dist, Rng, Shape};
use serde::{Deserialize, Serialize};

use crate::framing;

/// Transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Tcp,
    Udp,
    /// R2P2 over UDP (`ferrix_net::r2p2` client, `r2p2-linux` socket glue): one request, one
    /// reply message, matched by request id (not FIFO); echo and synthetic protocols only.
    R2p2,
}

/// Application protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AppProto {
    Echo,
    Synthetic,
    Memcached,
    Redis,
    Http,
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
    /// http: path to GET.
    pub http_path: String,
    /// Test knob: send this many requests back to back at each arrival (1 = off). Exists to
    /// show that the inter-arrival check catches a bursty sender.
    pub burst: u32,
    pub seed: u64,
    /// R2P2: per-request timeout (ms); a request without a reply by then is counted as failed.
    #[serde(default = "default_r2p2_timeout_ms")]
    pub r2p2_timeout_ms: u64,
}

fn default_r2p2_timeout_ms() -> u64 {
    1000
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
            http_path: "/".into(),
            burst: 1,
            seed: 1,
            r2p2_timeout_ms: default_r2p2_timeout_ms(),
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
        let kv = matches!(self.proto, AppProto::Memcached | AppProto::Redis);
        let stream_only = kv || self.proto == AppProto::Http;
        if stream_only && self.transport != Transport::Tcp {
            return Err(WorkloadError::Invalid(format!(
                "{:?} is supported over TCP only",
                self.proto
            )));
        }
        if self.transport == Transport::R2p2 && self.r2p2_timeout_ms == 0 {
            return Err(WorkloadError::Invalid(
                "the R2P2 timeout must be >= 1 ms".into(),
            ));
        }
        if kv && (self.keys == 0 || self.key_size < 8) {
            return Err(WorkloadError::Invalid(
                "key-value protocols need keys >= 1 and key size >= 8".into(),
            ));
        }
        if self.proto == AppProto::Http && !self.http_path.starts_with('/') {
            return Err(WorkloadError::Invalid(
                "http path must start with '/'".into(),
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
            AppProto::Memcached | AppProto::Redis => {
                let k = rng.random_range(0..self.w.keys);
                let key = format!("{k:0width$}", width = self.w.key_size);
                let get = rng.random::<f64>() < self.w.get_ratio;
                let n = self.w.value_size;
                let value = "v".repeat(n);
                let text = match (self.proto, get) {
                    (AppProto::Memcached, true) => format!("get {key}\r\n"),
                    (AppProto::Memcached, false) => format!("set {key} 0 0 {n}\r\n{value}\r\n"),
                    (_, true) => format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len()),
                    (_, false) => format!(
                        "*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n${n}\r\n{value}\r\n",
                        key.len()
                    ),
                };
                buf.extend_from_slice(text.as_bytes());
            }
            AppProto::Http => {
                let host = &self.w.target;
                let path = &self.w.http_path;
                buf.extend_from_slice(
                    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: lancet\r\n\r\n")
                        .as_bytes(),
                );
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
            AppProto::Memcached => framing::memcached(buf),
            AppProto::Redis => framing::redis(buf),
            AppProto::Http => framing::http(buf),
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::R2p2 => "r2p2",
        })
    }
}

impl FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tcp" => Ok(Transport::Tcp),
            "udp" => Ok(Transport::Udp),
            "r2p2" => Ok(Transport::R2p2),
            _ => Err(format!("unknown transport '{s}'")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
