//! The virtio-net control queue: decoding a command (class, command, data) and deciding the
//! ack. Only VIRTIO_NET_CTRL_MQ / VQ_PAIRS_SET is supported; everything else is refused.

use super::header::{
    VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, VIRTIO_NET_ERR, VIRTIO_NET_OK,
};

/// What a control command asks the device to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtrlAction {
    /// Use this many queue pairs from now on (ack OK).
    SetPairs(u16),
    /// Refuse the command (ack ERR).
    Refuse,
}

impl CtrlAction {
    /// The ack byte for this action.
    pub fn ack(self) -> u8 {
        match self {
            CtrlAction::SetPairs(_) => VIRTIO_NET_OK,
            CtrlAction::Refuse => VIRTIO_NET_ERR,
        }
    }
}

/// Decodes the driver-written part of a control command (`class, command, data...`).
/// `max_pairs` is the device's `max_virtqueue_pairs`; `mq` whether the driver negotiated MQ.
pub fn decode(cmd: &[u8], max_pairs: u16, mq: bool) -> CtrlAction {
    match cmd {
        [
            VIRTIO_NET_CTRL_MQ,
            VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET,
            lo,
            hi,
            ..,
        ] if mq => {
            let pairs = u16::from_le_bytes([*lo, *hi]);
            if (1..=max_pairs).contains(&pairs) {
                CtrlAction::SetPairs(pairs)
            } else {
                CtrlAction::Refuse
            }
        }
        _ => CtrlAction::Refuse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mq_pairs_set() {
        assert_eq!(decode(&[4, 0, 2, 0], 4, true), CtrlAction::SetPairs(2));
        assert_eq!(decode(&[4, 0, 4, 0], 4, true), CtrlAction::SetPairs(4));
        assert_eq!(decode(&[4, 0, 5, 0], 4, true), CtrlAction::Refuse);
        assert_eq!(decode(&[4, 0, 0, 0], 4, true), CtrlAction::Refuse);
        assert_eq!(decode(&[4, 0, 2], 4, true), CtrlAction::Refuse);
        assert_eq!(decode(&[4, 0, 2, 0], 4, false), CtrlAction::Refuse);
        assert_eq!(decode(&[4, 1, 2, 0], 4, true), CtrlAction::Refuse);
        assert_eq!(decode(&[0, 0, 1], 4, true), CtrlAction::Refuse);
        assert_eq!(decode(&[], 4, true), CtrlAction::Refuse);
        assert_eq!(CtrlAction::SetPairs(1).ack(), 0);
        assert_eq!(CtrlAction::Refuse.ack(), 1);
    }
}
