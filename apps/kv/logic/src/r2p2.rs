//! The store over R2P2 (issue 12): a request message's body is exactly one RESP command (an
//! array of bulk strings, or an inline line), the reply message's body is its RESP reply.
//! R2P2 needs no connection state, so there is no codec here, only [`handle_request`], and
//! [`is_read_only`] so the guest can mark reads for R2P2's read policy (the router may send
//! them to any replica; HovercRaft later serves them without ordering them).

use crate::expiry::Clock;
use crate::resp::parse::{Parsed, parse};
use crate::resp::{execute, reply, table};
use crate::sharded::Backend;
use alloc::vec::Vec;

/// Why a request body is not one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRequest {
    /// Truncated or empty.
    Incomplete,
    /// Bytes after the command.
    Trailing,
    /// A RESP protocol error (the reply still carries Redis's error text).
    Protocol,
}

/// Execute the command in `body`, appending its RESP reply to `out`. A malformed body gets a
/// RESP error reply (so the client always hears back) and an `Err` saying why.
pub fn handle_request<B: Backend>(
    body: &[u8],
    out: &mut Vec<u8>,
    b: &mut B,
    now: Clock,
) -> Result<(), BadRequest> {
    match parse(body, b.item_size_max()) {
        Parsed::Command(args, n) if n == body.len() => {
            let argv: Vec<&[u8]> = args.iter().map(|a| &**a).collect();
            // QUIT means nothing without a connection: it just replies +OK.
            execute(&argv, out, b, now);
            Ok(())
        }
        Parsed::Command(..) | Parsed::Nothing(_) if !body.is_empty() => {
            reply::error(out, b"ERR Protocol error: one command per R2P2 message");
            Err(BadRequest::Trailing)
        }
        Parsed::Error(e) => {
            reply::error(out, e.as_bytes());
            Err(BadRequest::Protocol)
        }
        _ => {
            reply::error(out, b"ERR Protocol error: incomplete command");
            Err(BadRequest::Incomplete)
        }
    }
}

/// Whether the command in `body` only reads (GET, MGET, EXISTS, TTL, PTTL, KEYS, DBSIZE,
/// PING, ECHO, INFO, ...). Malformed or unknown commands are not read-only.
pub fn is_read_only(body: &[u8]) -> bool {
    match parse(body, usize::MAX) {
        Parsed::Command(args, _) => args.first().is_some_and(|n| table::is_read_only(n)),
        _ => false,
    }
}
