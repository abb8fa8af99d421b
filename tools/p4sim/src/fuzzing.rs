//! The packet-path harnesses behind the fuzz targets (tools/p4sim/fuzz): here, in the
//! library, so that a normal test runs the very same code on bounded random inputs
//! (cargo-fuzz needs nightly; tests/fuzz_paths.rs).
//!
//! An input is a sequence of frames: a 2-byte big-endian length, then that many bytes (fewer
//! at the end of the input), the first of them the ingress port ([`frames`]).

use crate::control::jbsq::{JbsqConfig, Server};
use crate::control::sven::{self, SvenControl, SvenParams};
use crate::error::PacketError;
use crate::switch::{MAX_PACKET, Switch};
use std::net::{Ipv4Addr, SocketAddrV4};

/// The frames of a fuzz input: (ingress port, bytes).
pub fn frames(data: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let (len, tail) = rest.split_first_chunk::<2>()?;
        let n = usize::from(u16::from_be_bytes(*len)).min(tail.len());
        let (frame, tail) = tail.split_at(n);
        rest = tail;
        Some(frame)
    })
    .filter_map(|f| f.split_first().map(|(&port, f)| (u16::from(port), f)))
}

/// Writes frames in the input format (for tests and seed corpora).
pub fn encode(frames: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![];
    for (port, f) in frames {
        out.extend_from_slice(&((f.len() + 1) as u16).to_be_bytes());
        out.push(*port);
        out.extend_from_slice(f);
    }
    out
}

/// The router of the jbsq and sven fuzz targets: at 10.0.0.254 (REQ0 to port 8000,
/// FEEDBACK to 9000, MAC 02:00:00:00:00:01), five servers 10.0.0.1..=5:8000 on ports 1..=5,
/// JBSQ(n), recirculation port 68.
pub fn jbsq_config(n: u32) -> JbsqConfig {
    JbsqConfig {
        router: vec![
            SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 254), 8000),
            SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 254), 9000),
        ],
        router_mac: [2, 0, 0, 0, 0, 1],
        servers: (0..5u8)
            .map(|i| Server {
                addr: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1 + i), 8000),
                mac: [2, 0, 0, 0, 1, i],
                egress_port: 1 + u16::from(i),
            })
            .collect(),
        n,
        recirc_port: 68,
        routes: vec![],
        hosts: vec![],
    }
}

/// sven.p4's fuzz setup: [`jbsq_config`]`(1)`, SVEN with a 6 us SLO and drop rate 0.25 on every class that may drop (the
/// control loop moves them).
#[derive(Clone)]
pub struct SvenHarness {
    pub jbsq: JbsqConfig,
    pub ctl: SvenControl,
    sw: Switch,
}

/// Passes one frame may take (a REQ0 waiting for a free server recirculates until then).
pub const SVEN_MAX_PASSES: usize = 64;
/// Every this many frames the control loop runs a period.
pub const SVEN_PERIOD_FRAMES: usize = 8;

impl SvenHarness {
    pub fn new() -> Result<SvenHarness, String> {
        let jbsq = jbsq_config(1);
        let mut ctl = SvenControl::new(SvenParams {
            slo_ns: 6_000,
            period_ns: 20_000,
            ..SvenParams::default()
        });
        for (c, s) in ctl.classes.iter_mut().enumerate() {
            if ctl.params.no_drop & (1 << c) == 0 {
                s.drop_rate = 0.25;
            }
        }
        let sw = sven::switch(&jbsq, &ctl, 1)?;
        Ok(SvenHarness { jbsq, ctl, sw })
    }

    /// One input through a copy of the switch: frame i arrives at i microseconds (so
    /// measured latencies are not all 0), every [`SVEN_PERIOD_FRAMES`] frames the control
    /// loop runs. Every frame must run without a `PacketError` other than the pass limit (a
    /// finding otherwise: the program checks every index it uses). Returns the switch.
    pub fn run(&self, data: &[u8]) -> Result<Switch, String> {
        let mut sw = self.sw.clone();
        let mut ctl = self.ctl.clone();
        for (i, (port, f)) in frames(data).enumerate() {
            if f.len() > MAX_PACKET {
                continue;
            }
            match sw.run(port, f, i as u64 * 1000, SVEN_MAX_PASSES) {
                Ok(_) | Err(PacketError::PassLimit(_)) => {}
                Err(e) => return Err(format!("frame {i}: {e}")),
            }
            if (i + 1) % SVEN_PERIOD_FRAMES == 0 {
                ctl.period(&mut sw).map_err(|e| format!("period: {e}"))?;
            }
        }
        Ok(sw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_truncate() {
        let input = encode(&[(3, vec![1, 2, 3]), (0, vec![]), (7, vec![9; 4])]);
        let got: Vec<(u16, Vec<u8>)> = frames(&input).map(|(p, f)| (p, f.to_vec())).collect();
        assert_eq!(got, [(3, vec![1, 2, 3]), (0, vec![]), (7, vec![9; 4])]);
        // A length beyond the input takes what is left; an empty frame has no port.
        let got: Vec<_> = frames(&[0, 9, 5, 1]).collect();
        assert_eq!(got, [(5, &[1u8][..])]);
        assert_eq!(frames(&[0, 0, 0]).count(), 0);
    }
}
