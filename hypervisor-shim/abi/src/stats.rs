//! Live statistics records (`ferrix.stats-ms=N`, `ferrix run --stats-live / --stats-json`):
//! the one place their format is defined. The guest encodes with [`RecordWriter`], the host
//! decodes with [`parse`]; both sides use nothing else.
//!
//! A record is one line of ASCII text, at most [`RECORD_MAX`] bytes with its final `\n`:
//!
//! ```text
//! FXSTATS v=1 seq=7 t_ns=700123456 final=0 cores=2 steer_dropped=0 core=0 queue=0 rx=12 ... core=1 ...
//! ```
//!
//! * The first token is [`MAGIC`]; every other token is `key=value`, separated by one space.
//!   A key is 1..=[`KEY_MAX`] bytes of `[a-z0-9_.]`, a value an unsigned decimal `u64`.
//! * The header keys come first, in this order: `v` ([`VERSION`]), `seq` (0, 1, 2, ... per
//!   boot), `t_ns` (guest clock), `final` (1 for the record pushed at exit, whose values are
//!   the ones `ferrix.stats` prints, else 0), `cores` (how many core groups follow).
//! * Then keys for the whole VM, then one group per core: a `core=N` token followed by that
//!   core's keys. Which keys a core has is not fixed (a drop reason appears as
//!   `drop.<reason>` only when non-zero; scheduler keys only when `serve_tcp` runs), so a host
//!   shows what it knows and keeps the rest.
//!
//! Channels: under the shim the hypercall [`crate::nr::STATS_PUSH`] (one record per call);
//! under QEMU the bytes are written to [`QEMU_STATS_PORT`], an `isa-debugcon` device of its
//! own (not the console). A host treats the channel as hostile: anything [`parse`] refuses
//! is counted and dropped.

/// First token of every record.
pub const MAGIC: &str = "FXSTATS";
/// Version of the record format (the `v=` key).
pub const VERSION: u64 = 1;
/// Longest record, `\n` included.
pub const RECORD_MAX: usize = 16 * 1024;
/// Longest key.
pub const KEY_MAX: usize = 48;
/// The header keys, in order.
pub const HEADER_KEYS: [&str; 5] = ["v", "seq", "t_ns", "final", "cores"];
/// The port of QEMU's `isa-debugcon` the guest writes records to (the qemu/ `stats`
/// fragment). Far from the shim's ports and the 16550 console.
pub const QEMU_STATS_PORT: u16 = 0x0e9;
/// Shortest and longest push interval (`ferrix.stats-ms`).
pub const INTERVAL_MS: core::ops::RangeInclusive<u32> = 1..=3_600_000;

/// A record's header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub seq: u64,
    pub t_ns: u64,
    pub is_final: bool,
    pub cores: u64,
}

/// Why a record was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Longer than [`RECORD_MAX`].
    TooLong,
    /// Not ASCII, no final newline, or a newline inside.
    NotALine,
    /// The first token is not [`MAGIC`].
    BadMagic,
    /// A token is not `key=value` with a valid key and `u64` value.
    BadToken,
    /// A header key missing or out of order, or a version this parser does not know.
    BadHeader,
    /// The number of `core=` groups differs from `cores=`.
    CoreCount,
}

/// A parsed record: its header and its fields after the header, in order (`core=N` tokens
/// included: they start each core's group).
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    pub header: Header,
    body: &'a str,
}

impl<'a> Record<'a> {
    /// The `key=value` fields after the header (already validated by [`parse`]).
    pub fn fields(&self) -> impl Iterator<Item = (&'a str, u64)> + 'a {
        let mut rest = self.body;
        core::iter::from_fn(move || {
            if rest.is_empty() {
                None
            } else {
                field(take(&mut rest))
            }
        })
    }
}

fn valid_key(k: &str) -> bool {
    (1..=KEY_MAX).contains(&k.len())
        && k.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
}

/// Takes the next space-separated token off `s` (empty when `s` is).
fn take<'a>(s: &mut &'a str) -> &'a str {
    let (tok, rest) = s.split_once(' ').unwrap_or((s, ""));
    *s = rest;
    tok
}

/// One `key=value` token, or None if malformed.
fn field(tok: &str) -> Option<(&str, u64)> {
    let (k, v) = tok.split_once('=')?;
    // `u64::from_str` accepts a leading '+'; the format does not.
    if !valid_key(k) || v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((k, v.parse().ok()?))
}

/// Parses and validates one record (with its final `\n`).
pub fn parse(line: &[u8]) -> Result<Record<'_>, ParseError> {
    if line.len() > RECORD_MAX {
        return Err(ParseError::TooLong);
    }
    let body = match line.split_last() {
        Some((b'\n', body)) if body.is_ascii() && !body.contains(&b'\n') => body,
        _ => return Err(ParseError::NotALine),
    };
    // ASCII was checked just above.
    let text = core::str::from_utf8(body).map_err(|_| ParseError::NotALine)?;
    let mut rest = text;
    if take(&mut rest) != MAGIC {
        return Err(ParseError::BadMagic);
    }
    let mut vals = [0u64; HEADER_KEYS.len()];
    for (want, val) in HEADER_KEYS.iter().zip(vals.iter_mut()) {
        match field(take(&mut rest)) {
            Some((k, v)) if k == *want => *val = v,
            _ => return Err(ParseError::BadHeader),
        }
    }
    let [v, seq, t_ns, fin, cores] = vals;
    if v != VERSION || fin > 1 {
        return Err(ParseError::BadHeader);
    }
    let mut groups = 0u64;
    let mut toks = rest;
    while !toks.is_empty() {
        let (k, _) = field(take(&mut toks)).ok_or(ParseError::BadToken)?;
        groups += u64::from(k == "core");
    }
    if groups != cores {
        return Err(ParseError::CoreCount);
    }
    Ok(Record {
        header: Header {
            seq,
            t_ns,
            is_final: fin == 1,
            cores,
        },
        body: rest,
    })
}

/// Builds a record in a caller's buffer without allocating (the guest uses it from its timer
/// interrupt). Keys must be valid ([`KEY_MAX`], `[a-z0-9_.]`): they are the kernel's own.
pub struct RecordWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
    overflow: bool,
}

impl<'a> RecordWriter<'a> {
    /// Starts a record in `buf` (at most [`RECORD_MAX`] bytes of it are used).
    pub fn new(buf: &'a mut [u8], header: Header) -> Self {
        let mut w = RecordWriter {
            buf,
            len: 0,
            overflow: false,
        };
        w.push(MAGIC.as_bytes());
        let vals = [
            VERSION,
            header.seq,
            header.t_ns,
            u64::from(header.is_final),
            header.cores,
        ];
        for (k, v) in HEADER_KEYS.iter().zip(vals) {
            w.field(k, v);
        }
        w
    }

    fn push(&mut self, b: &[u8]) {
        let cap = self.buf.len().min(RECORD_MAX);
        match self.buf.get_mut(self.len..self.len + b.len()) {
            Some(dst) if self.len + b.len() <= cap => {
                dst.copy_from_slice(b);
                self.len += b.len();
            }
            _ => self.overflow = true,
        }
    }

    /// Appends ` key=value`.
    pub fn field(&mut self, key: &str, value: u64) {
        self.push(b" ");
        self.push(key.as_bytes());
        self.push(b"=");
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut v = value;
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }

    /// Appends a `drop.<reason>=value` field.
    pub fn drop_field(&mut self, reason: &str, value: u64) {
        self.push(b" drop.");
        let at = self.len;
        self.field(reason, value);
        // `field` wrote " reason=..": drop its leading space (the prefix has the separator).
        if !self.overflow {
            self.buf.copy_within(at + 1..self.len, at);
            self.len -= 1;
        }
    }

    /// Starts core `core`'s group.
    pub fn core(&mut self, core: u64) {
        self.field("core", core);
    }

    /// Ends the record: its bytes with the final `\n`, or None if it did not fit.
    pub fn finish(mut self) -> Option<&'a [u8]> {
        self.push(b"\n");
        if self.overflow {
            return None;
        }
        let RecordWriter { buf, len, .. } = self;
        Some(&buf[..len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(buf: &mut [u8]) -> Option<&[u8]> {
        let h = Header {
            seq: 3,
            t_ns: 42,
            is_final: true,
            cores: 2,
        };
        let mut w = RecordWriter::new(buf, h);
        w.field("steer_dropped", 0);
        w.core(0);
        w.field("rx", 18_446_744_073_709_551_615);
        w.drop_field("bad_checksum", 2);
        w.core(1);
        w.field("rx", 0);
        w.finish()
    }

    #[test]
    fn round_trip() {
        let mut buf = [0u8; 256];
        let line = sample(&mut buf).unwrap();
        assert_eq!(
            core::str::from_utf8(line).unwrap(),
            "FXSTATS v=1 seq=3 t_ns=42 final=1 cores=2 steer_dropped=0 core=0 \
             rx=18446744073709551615 drop.bad_checksum=2 core=1 rx=0\n"
        );
        let r = parse(line).unwrap();
        assert_eq!(
            r.header,
            Header {
                seq: 3,
                t_ns: 42,
                is_final: true,
                cores: 2
            }
        );
        let f: [(&str, u64); 6] = core::array::from_fn(|i| r.fields().nth(i).unwrap());
        assert_eq!(
            f,
            [
                ("steer_dropped", 0),
                ("core", 0),
                ("rx", u64::MAX),
                ("drop.bad_checksum", 2),
                ("core", 1),
                ("rx", 0)
            ]
        );
        assert_eq!(r.fields().count(), 6);
    }

    #[test]
    fn overflow_is_none_not_a_partial_record() {
        let mut small = [0u8; 60];
        assert!(sample(&mut small).is_none());
    }

    #[test]
    fn malformed_records_are_refused() {
        let ok = "FXSTATS v=1 seq=0 t_ns=1 final=0 cores=1 core=0 rx=1\n";
        assert!(parse(ok.as_bytes()).is_ok());
        let cases: &[(&str, ParseError)] = &[
            (
                "FXSTATS v=1 seq=0 t_ns=1 final=0 cores=1 core=0 rx=1",
                ParseError::NotALine,
            ),
            ("", ParseError::NotALine),
            (
                "FXSTATS v=1 seq=0 t_ns=1 final=0 cores=1 core=0 rx=\u{e9}\n",
                ParseError::NotALine,
            ),
            (
                "FXSTAT v=1 seq=0 t_ns=1 final=0 cores=0\n",
                ParseError::BadMagic,
            ),
            (
                "FXSTATS v=2 seq=0 t_ns=1 final=0 cores=0\n",
                ParseError::BadHeader,
            ),
            (
                "FXSTATS seq=0 v=1 t_ns=1 final=0 cores=0\n",
                ParseError::BadHeader,
            ),
            (
                "FXSTATS v=1 seq=0 t_ns=1 final=2 cores=0\n",
                ParseError::BadHeader,
            ),
            ("FXSTATS v=1 seq=0 t_ns=1 final=0\n", ParseError::BadHeader),
            (
                "FXSTATS v=1 seq=0 t_ns=1 final=0 cores=1 core=0 rx=+1\n",
                ParseError::BadToken,
            ),
            (
                "FXSTATS v=1 seq=0 t_ns=1 final=0 cores=1 core=0 RX=1\n",
                ParseError::BadToken,
            ),
            (
                "FXSTATS v=1 seq=0 t_ns=1 final=0 cores=1 core=0 rx=99999999999999999999\n",
                ParseError::BadToken,
            ),
            (
                "FXSTATS v=1 seq=0 t_ns=1 final=0 cores=1 core=0 rx\n",
                ParseError::BadToken,
            ),
            (
                "FXSTATS v=1 seq=0 t_ns=1 final=0 cores=2 core=0 rx=1\n",
                ParseError::CoreCount,
            ),
        ];
        for (line, want) in cases {
            assert_eq!(parse(line.as_bytes()).err(), Some(*want), "{line:?}");
        }
        let mut long = [b'a'; RECORD_MAX + 1];
        long[RECORD_MAX] = b'\n';
        assert_eq!(parse(&long).err(), Some(ParseError::TooLong));
    }
}
