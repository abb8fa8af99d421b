//! What an agent sends: transport, application protocol, request encoding and response framing.
//!
//! Protocols (thesis 3.2, 4.5):
//! - `echo`: a fixed-size payload, echoed back.
//! - `synthetic`: 8-byte request = service time in nanoseconds (u64, little endian); the server
//!   spins that long and echoes the 8 bytes.
//! - `memcached`: ASCII `get`/`set` with a key space, a key size and a value size (TCP only).
//! - `memcached-binary`: the binary protocol's GET (0x00) and SET (0x01) with the same
//!   parameters (TCP only).
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
    /// memcached binary protocol (GET / SET opcodes).
    #[serde(rename = "memcached-binary")]
    MemcachedBinary,
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
    /// Key-value protocols: key and value sizes (fixed from `key_size`/`value_size`, or the
    /// Facebook ETC / USR distributions).
    #[serde(default)]
    pub kv_sizes: KvSizes,
}

/// Key and value sizes of the key-value protocols.
///
/// - `fixed`: `key_size` and `value_size`.
/// - `etc`: Facebook's ETC pool (Atikoglu et al., "Workload Analysis of a Large-Scale
///   Key-Value Store", SIGMETRICS 2012, fig 2 and its fitted models): key size
///   Generalized Extreme Value (location 30.7984, scale 8.20449, shape 0.078688), the
///   parameters mutilate also uses (`fb_key`); value size Generalized Pareto (location 0,
///   scale 214.476, shape 0.348238), the paper's fit (mutilate's `fb_value` adds a discrete
///   head below 15 bytes, left out here). Keys are clamped to 8..=250 bytes (memcached's
///   limit), values to 1..=1 MiB.
/// - `usr`: Facebook's USR pool (same paper): keys of 16 or 21 bytes (the only two sizes the
///   paper reports; the 50/50 split is our assumption), values of 2 bytes.
///
/// A key's size is a function of the key (its id hashed to a quantile), so every request for
/// a key uses the same bytes; value sizes are drawn per SET. Get/set mix: `get_ratio`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum KvSizes {
    #[default]
    Fixed,
    Etc,
    Usr,
}

/// SplitMix64 finaliser: a key id to a well-mixed 64-bit value.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A uniform in (0, 1) from 64 bits.
fn unit(x: u64) -> f64 {
    ((x >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

/// ETC key size at quantile `u`: the GEV inverse CDF.
pub fn etc_key_size(u: f64) -> usize {
    let (mu, sigma, xi) = (30.7984, 8.20449, 0.078688);
    let x = mu + sigma * ((-u.ln()).powf(-xi) - 1.0) / xi;
    x.round().clamp(8.0, 250.0) as usize
}

/// ETC value size at quantile `u`: the Generalized Pareto inverse CDF.
pub fn etc_value_size(u: f64) -> usize {
    let (theta, sigma, xi) = (0.0, 214.476, 0.348238);
    let x = theta + sigma * ((1.0 - u).powf(-xi) - 1.0) / xi;
    x.round().clamp(1.0, 1_048_576.0) as usize
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
            kv_sizes: KvSizes::Fixed,
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
        let kv = matches!(
            self.proto,
            AppProto::Memcached | AppProto::MemcachedBinary | AppProto::Redis
        );
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
            AppProto::Memcached | AppProto::MemcachedBinary | AppProto::Redis => {
                let k = rng.random_range(0..self.w.keys);
                let (key_size, n) = match self.w.kv_sizes {
                    KvSizes::Fixed => (self.w.key_size, self.w.value_size),
                    KvSizes::Etc => (
                        etc_key_size(unit(mix(k))),
                        etc_value_size(rng.random::<f64>()),
                    ),
                    KvSizes::Usr => (if mix(k) & 1 == 0 { 16 } else { 21 }, 2),
                };
                let key = format!("{k:0width$}", width = key_size);
                let get = rng.random::<f64>() < self.w.get_ratio;
                if self.proto == AppProto::MemcachedBinary {
                    encode_binary(buf, get, key.as_bytes(), n);
                    return;
                }
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
            AppProto::MemcachedBinary => framing::memcached_binary(buf),
            AppProto::Redis => framing::redis(buf),
            AppProto::Http => framing::http(buf),
        }
    }
}

/// A memcached binary-protocol GET, or SET of `n` bytes with flags 0 and no expiry.
fn encode_binary(buf: &mut Vec<u8>, get: bool, key: &[u8], n: usize) {
    let klen = key.len().min(usize::from(u16::MAX)) as u16;
    let extras: u8 = if get { 0 } else { 8 };
    let body = u32::from(klen) + u32::from(extras) + if get { 0 } else { n as u32 };
    buf.push(0x80); // request magic
    buf.push(if get { 0x00 } else { 0x01 });
    buf.extend_from_slice(&klen.to_be_bytes());
    buf.push(extras);
    buf.push(0); // data type
    buf.extend_from_slice(&0u16.to_be_bytes()); // vbucket
    buf.extend_from_slice(&body.to_be_bytes());
    buf.extend_from_slice(&0u32.to_be_bytes()); // opaque
    buf.extend_from_slice(&0u64.to_be_bytes()); // CAS
    if !get {
        buf.extend_from_slice(&0u32.to_be_bytes()); // flags
        buf.extend_from_slice(&0u32.to_be_bytes()); // expiry
    }
    buf.extend_from_slice(&key[..usize::from(klen)]);
    if !get {
        buf.extend(std::iter::repeat_n(b'v', n));
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
    fn memcached_binary_get_and_set() {
        let mut buf = Vec::new();
        encode_binary(&mut buf, true, b"key12345", 0);
        assert_eq!(buf.len(), 24 + 8);
        assert_eq!(&buf[..2], &[0x80, 0x00]);
        assert_eq!(u16::from_be_bytes([buf[2], buf[3]]), 8);
        assert_eq!(u32::from_be_bytes(buf[8..12].try_into().unwrap()), 8);
        buf.clear();
        encode_binary(&mut buf, false, b"key12345", 5);
        assert_eq!(buf.len(), 24 + 8 + 8 + 5);
        assert_eq!((buf[1], buf[4]), (0x01, 8));
        assert_eq!(u32::from_be_bytes(buf[8..12].try_into().unwrap()), 21);
        assert!(buf.ends_with(b"key12345vvvvv"));
        // A "Not found" reply: 24-byte header + 9-byte body.
        let mut reply = vec![0x81, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9];
        reply.resize(24, 0);
        reply.extend_from_slice(b"Not found");
        assert_eq!(framing::memcached_binary(&reply[..30]), None);
        assert_eq!(framing::memcached_binary(&reply), Some(33));
    }

    #[test]
    fn facebook_size_distributions() {
        // Medians from the inverse CDFs: GEV median = mu + sigma((ln 2)^-xi - 1)/xi ≈ 33.8;
        // GPareto median = sigma(2^xi - 1)/xi ≈ 168.
        assert_eq!(etc_key_size(0.5), 34);
        assert_eq!(etc_value_size(0.5), 168);
        assert!(etc_key_size(1e-12) >= 8 && etc_key_size(1.0 - 1e-12) <= 250);
        assert!(etc_value_size(1.0 - 1e-15) <= 1_048_576);
        let w = Workload {
            proto: AppProto::MemcachedBinary,
            kv_sizes: KvSizes::Usr,
            get_ratio: 0.0,
            keys: 100,
            ..Workload::default()
        };
        let (_, r) = w.validate().unwrap();
        let mut rng = ferrix_dist::rng(3);
        let mut sizes = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let mut buf = Vec::new();
            r.encode(&mut rng, &mut buf);
            let klen = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
            sizes.insert(klen);
            assert_eq!(buf.len(), 24 + 8 + klen + 2);
        }
        assert_eq!(sizes.into_iter().collect::<Vec<_>>(), vec![16, 21]);
        // ETC: the same key always has the same size; sizes vary across keys.
        let etc = Workload {
            kv_sizes: KvSizes::Etc,
            get_ratio: 1.0,
            ..w
        };
        let (_, r) = etc.validate().unwrap();
        let mut by_key = std::collections::HashMap::new();
        for _ in 0..500 {
            let mut buf = Vec::new();
            r.encode(&mut rng, &mut buf);
            let key = buf[24..].to_vec();
            let n: usize = String::from_utf8_lossy(&key).parse().unwrap();
            assert_eq!(*by_key.entry(n).or_insert(key.len()), key.len());
        }
        let distinct: std::collections::BTreeSet<_> = by_key.values().collect();
        assert!(distinct.len() > 5, "{distinct:?}");
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
