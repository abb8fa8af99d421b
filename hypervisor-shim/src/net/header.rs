//! virtio-net wire constants (virtio 1.x §5.1): feature bits, the device configuration
//! space, the `virtio_net_hdr_v1` every packet carries, and the control-queue codes.

/// VIRTIO_NET_F_MAC: the device has a MAC address in its config space.
pub const VIRTIO_NET_F_MAC: u32 = 5;
/// VIRTIO_NET_F_STATUS: the config space has a link status.
pub const VIRTIO_NET_F_STATUS: u32 = 16;
/// VIRTIO_NET_F_CTRL_VQ: a control queue exists.
pub const VIRTIO_NET_F_CTRL_VQ: u32 = 17;
/// VIRTIO_NET_F_MQ: several queue pairs, chosen with VIRTIO_NET_CTRL_MQ.
pub const VIRTIO_NET_F_MQ: u32 = 22;

/// Config status bit: link up.
pub const VIRTIO_NET_S_LINK_UP: u16 = 1;

/// virtio device id of a network card.
pub const VIRTIO_ID_NET: u32 = 1;
/// Our vendor id: "FRRX" little-endian.
pub const FERRIX_VENDOR_ID: u32 = 0x5852_5246;

/// Length of `virtio_net_hdr_v1` (flags, gso_type, hdr_len, gso_size, csum_start,
/// csum_offset, num_buffers).
pub const NET_HDR_LEN: usize = 12;

/// The header written in front of every received frame: `num_buffers = 1`, zeros elsewhere
/// (no checksum offload, no GSO).
pub fn rx_header() -> [u8; NET_HDR_LEN] {
    let mut h = [0u8; NET_HDR_LEN];
    h[10..12].copy_from_slice(&1u16.to_le_bytes());
    h
}

/// Splits a transmitted buffer into header and frame; `None` when shorter than the header.
/// The header's offload fields are ignored: no offload was offered.
pub fn split_tx(buf: &[u8]) -> Option<&[u8]> {
    buf.get(NET_HDR_LEN..)
}

/// Control class VIRTIO_NET_CTRL_MQ.
pub const VIRTIO_NET_CTRL_MQ: u8 = 4;
/// Command VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET.
pub const VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET: u8 = 0;
/// Control ack: success.
pub const VIRTIO_NET_OK: u8 = 0;
/// Control ack: failure.
pub const VIRTIO_NET_ERR: u8 = 1;

/// The configuration space: `mac[6]`, `status: u16`, `max_virtqueue_pairs: u16`.
pub fn config_space(mac: [u8; 6], max_pairs: u16) -> [u8; 10] {
    let mut c = [0u8; 10];
    c[0..6].copy_from_slice(&mac);
    c[6..8].copy_from_slice(&VIRTIO_NET_S_LINK_UP.to_le_bytes());
    c[8..10].copy_from_slice(&max_pairs.to_le_bytes());
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        assert_eq!(rx_header(), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
        assert_eq!(split_tx(&[0u8; 11]), None);
        assert_eq!(split_tx(&[0u8; 12]), Some(&[][..]));
        let mut b = vec![0u8; 12];
        b.extend_from_slice(b"frame");
        assert_eq!(split_tx(&b), Some(&b"frame"[..]));
    }

    #[test]
    fn config() {
        let c = config_space([1, 2, 3, 4, 5, 6], 4);
        assert_eq!(c, [1, 2, 3, 4, 5, 6, 1, 0, 4, 0]);
    }
}
