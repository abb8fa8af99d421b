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
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_output: 256 * 1024,
            max_line: 64 * 1024,
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
