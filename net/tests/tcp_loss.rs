//! Random frame loss in both directions: TCP retransmits, every reply arrives in order.

mod tcp_common;

use tcp_common::Net;

#[test]
fn five_percent_loss() {
    let mut net = Net::new(64, 4, 2048);
    net.loss_ppm = 50_000;
    net.request_reply(16, 100, 2_000_000);
    eprintln!(
        "dropped {} delivered {} simulated {}",
        net.dropped, net.delivered, net.now
    );
    assert!(net.dropped > 0);
}

#[test]
fn twenty_percent_loss() {
    let mut net = Net::new(16, 4, 1024);
    net.loss_ppm = 200_000;
    net.request_reply(8, 200, 2_000_000);
    eprintln!(
        "dropped {} delivered {} simulated {}",
        net.dropped, net.delivered, net.now
    );
    assert!(net.dropped > 0);
}

#[test]
fn small_buffers_flow_control_and_loss() {
    // 256-byte buffers, 4000 bytes each way per connection: sends are partial and resumed on
    // `Sent`, the receive window closes and reopens on `recv_done`.
    let mut net = Net::new(8, 2, 256);
    net.loss_ppm = 20_000;
    net.request_reply(4, 500, 2_000_000);
    assert!(net.dropped > 0);
}
