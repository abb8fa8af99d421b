//! ICMP (RFC 792) echo: parse an echo request and turn it into an echo reply. Other ICMP
//! messages are counted and dropped ([`DropReason::IcmpType`]).

use crate::checksum;
use crate::stats::DropReason;

/// ICMP header length: type, code, checksum, identifier, sequence number.
pub const ICMP_HEADER_LEN: usize = 8;
/// Type "echo reply" (RFC 792).
pub const ICMP_ECHO_REPLY: u8 = 0;
/// Type "echo request" (RFC 792).
pub const ICMP_ECHO_REQUEST: u8 = 8;

/// A verified ICMP echo request (the whole ICMP message, borrowed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EchoRequest<'a> {
    /// Identifier.
    pub ident: u16,
    /// Sequence number.
    pub seq: u16,
    /// Echo data after the 8-byte header.
    pub data: &'a [u8],
}

impl<'a> EchoRequest<'a> {
    /// Parses an ICMP message (the IP payload), verifying its checksum, and accepts only an
    /// echo request with code 0.
    pub fn parse(msg: &'a [u8]) -> Result<Self, DropReason> {
        let (h, data) = msg
            .split_first_chunk::<ICMP_HEADER_LEN>()
            .ok_or(DropReason::IcmpTruncated)?;
        if !checksum::verify(msg) {
            return Err(DropReason::IcmpChecksum);
        }
        if h[0] != ICMP_ECHO_REQUEST || h[1] != 0 {
            return Err(DropReason::IcmpType);
        }
        Ok(EchoRequest {
            ident: u16::from_be_bytes([h[4], h[5]]),
            seq: u16::from_be_bytes([h[6], h[7]]),
            data,
        })
    }
}

/// Writes an echo message of type `icmp_type` (header, `data`, checksum) into `buf`, which
/// must be exactly `8 + data.len()` bytes; false otherwise.
pub fn write_echo(buf: &mut [u8], icmp_type: u8, ident: u16, seq: u16, data: &[u8]) -> bool {
    if buf.len() != ICMP_HEADER_LEN.saturating_add(data.len()) {
        return false;
    }
    let Some((h, rest)) = buf.split_first_chunk_mut::<ICMP_HEADER_LEN>() else {
        return false;
    };
    h[0] = icmp_type;
    h[1] = 0;
    h[2..4].copy_from_slice(&[0, 0]);
    h[4..6].copy_from_slice(&ident.to_be_bytes());
    h[6..8].copy_from_slice(&seq.to_be_bytes());
    rest.copy_from_slice(data);
    let c = checksum::checksum(buf);
    if let Some(f) = buf.get_mut(2..4) {
        f.copy_from_slice(&c.to_be_bytes());
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ICMP part of an echo request captured on Linux loopback (`ident 0x1234, seq 1`).
    pub(crate) const CAPTURED_REQUEST: &str =
        "08007637123400016665727269782d70696e672d30313233343536373839616263646566";
    /// Linux's echo reply to it, captured in the same session.
    pub(crate) const CAPTURED_REPLY: &str =
        "00007e37123400016665727269782d70696e672d30313233343536373839616263646566";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn reply_matches_linux() {
        let req = hex(CAPTURED_REQUEST);
        let e = EchoRequest::parse(&req).unwrap();
        assert_eq!((e.ident, e.seq), (0x1234, 1));
        assert_eq!(e.data, b"ferrix-ping-0123456789abcdef");
        let mut out = vec![0u8; req.len()];
        assert!(write_echo(
            &mut out,
            ICMP_ECHO_REPLY,
            e.ident,
            e.seq,
            e.data
        ));
        assert_eq!(out, hex(CAPTURED_REPLY));
        assert!(!write_echo(&mut out[1..], ICMP_ECHO_REPLY, 0, 0, e.data));
    }

    #[test]
    fn rejects() {
        let req = hex(CAPTURED_REQUEST);
        assert_eq!(
            EchoRequest::parse(&req[..7]),
            Err(DropReason::IcmpTruncated)
        );
        let mut bad = req.clone();
        bad[20] ^= 0x40;
        assert_eq!(EchoRequest::parse(&bad), Err(DropReason::IcmpChecksum));
        let reply = hex(CAPTURED_REPLY);
        assert_eq!(EchoRequest::parse(&reply), Err(DropReason::IcmpType));
    }
}
