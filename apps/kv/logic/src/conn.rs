//! What every codec shares: the per-connection limits (back-pressure), the result of feeding
//! bytes, and the [`Codec`] trait a guest drives.
//!
//! The caller owns the input buffer: it passes every unconsumed byte it holds, the codec
//! executes the complete commands at the front and says how many bytes it consumed; the
//! caller keeps the rest (a partial command) and appends what arrives next. The codec stops
//! consuming when the output buffer reaches [`Limits::max_output`]: a client that pipelines and
//! never reads makes the caller stop reading the socket (TCP's window then pushes back), and
//! memory stays bounded by `max_output` plus one command's reply plus the input the caller
//! holds, which the codec bounds by refusing a line longer than [`Limits::max_line`].

use crate::expiry::Clock;
use crate::sharded::Backend;
use alloc::vec::Vec;

/// Per-connection bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Stop executing commands once the output buffer holds this many bytes.
    pub max_output: usize,
    /// The longest command line (memcached ASCII, RESP inline) before the connection is
    /// closed with an error.
    pub max_line: usize,
    /// The largest reply one multi-key read (memcached `get k1 k2 ...`, RESP `MGET`) may
    /// build: past it the command answers memcached's `SERVER_ERROR out of memory writing get
    /// response` or a RESP error instead, so a line naming one large item thousands of times
    /// cannot make a reply of gigabytes. Replies are built whole (not streamed).
    pub max_reply: usize,
}

/// [`Limits::max_reply`] by default: two items of memcached's default 1 MiB size limit.
pub const DEFAULT_MAX_REPLY: usize = 2 * 1024 * 1024 + 64 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_output: 256 * 1024,
            max_line: 64 * 1024,
            max_reply: DEFAULT_MAX_REPLY,
        }
    }
}

/// The result of one `feed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Input bytes consumed (drop them from the front of the buffer).
    pub consumed: usize,
    /// Send the output, then close the connection (quit, or a fatal protocol error).
    pub close: bool,
    /// Stopped because the output reached `max_output`: send some output, then feed again.
    pub blocked: bool,
}

/// A connection's protocol state.
pub trait Codec {
    /// Execute the complete commands at the front of `input`, appending replies to `out`.
    fn feed<B: Backend>(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        backend: &mut B,
        now: Clock,
    ) -> Progress;
}

/// What a framed codec did with the command at the front of its input (see [`drive`]).
pub(crate) enum Frame {
    /// A command of this many bytes ran.
    Consumed(usize),
    /// The command is not all here yet.
    Need,
    /// Close after consuming this many bytes (quit, or a fatal protocol error).
    Close(usize),
}

/// A codec that [`drive`] can run: one command at a time from the front of the input, and a
/// count of bytes to skip unread (the data block of a refused store).
pub(crate) trait Framed {
    /// Bytes still to skip.
    fn swallow(&mut self) -> &mut usize;
    /// The connection's limits.
    fn limits(&self) -> &Limits;
    /// Runs the command at the front of `rest` (never empty).
    fn step<B: Backend>(&mut self, rest: &[u8], out: &mut Vec<u8>, b: &mut B, now: Clock) -> Frame;
}

/// The feed loop memcached's ASCII and binary codecs share: skip what is to be swallowed, stop
/// when the output is full (back-pressure), otherwise run one command and go on.
pub(crate) fn drive<F: Framed, B: Backend>(
    f: &mut F,
    input: &[u8],
    out: &mut Vec<u8>,
    b: &mut B,
    now: Clock,
) -> Progress {
    let mut p = Progress::default();
    let mut pos = 0;
    while pos < input.len() {
        let swallow = f.swallow();
        if *swallow > 0 {
            let n = (*swallow).min(input.len() - pos);
            pos += n;
            *swallow -= n;
            continue;
        }
        if out.len() >= f.limits().max_output {
            p.blocked = true;
            break;
        }
        match f.step(&input[pos..], out, b, now) {
            Frame::Consumed(n) => pos += n,
            Frame::Need => break,
            Frame::Close(n) => {
                pos += n;
                p.close = true;
                break;
            }
        }
    }
    p.consumed = pos;
    p
}
