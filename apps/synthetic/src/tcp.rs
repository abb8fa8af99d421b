//! The TCP mode of the synthetic server (thesis 3.2 microbenchmark framing): each request is 8
//! bytes naming a service time in ns (little-endian); the server spins that long and answers
//! with 8 bytes (the request echoed). Requests may be pipelined; each connection is served in
//! order on its home core (the core its flow is hashed to).

use core::sync::atomic::Ordering;
use ferrix::net::tcp::{TcpEndpoint, TcpEvent};

/// Request and reply size.
pub const MSG: usize = 8;

/// Handles one TCP event: serves every complete request that has arrived and fits the send
/// buffer; the rest waits for the next `Received`/`Sent` event.
pub fn on_event(ep: &mut TcpEndpoint, ev: TcpEvent, max_service_ns: u64) {
    let c = match ev {
        TcpEvent::Received(c, _) | TcpEvent::Sent(c, _) => c,
        TcpEvent::PeerClosed(c) => {
            let _ = ep.close(c);
            return;
        }
        _ => return,
    };
    loop {
        let mut req = [0u8; MSG];
        match ep.recv(c) {
            Ok(data) if data.len() >= MSG => req.copy_from_slice(&data[..MSG]),
            _ => return,
        }
        super::spin(u64::from_le_bytes(req).min(max_service_ns));
        if ep.send(c, &req) != Ok(MSG) {
            // No room for the whole reply: the request stays unread and is served (again,
            // from the start) when the peer acknowledges and room appears.
            return;
        }
        let _ = ep.recv_done(c, MSG);
        super::REPLIED.fetch_add(1, Ordering::Relaxed);
    }
}
