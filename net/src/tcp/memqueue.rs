//! An in-memory [`FrameQueue`]: what a test (or a host tool) gives a [`super::TcpEndpoint`]
//! instead of a NIC queue pair.

use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;

use super::FrameQueue;

/// Frames to receive (`rx`, oldest first) and frames sent (`tx`, oldest first).
#[derive(Debug, Default)]
pub struct MemQueue {
    /// Frames the endpoint will receive.
    pub rx: VecDeque<Vec<u8>>,
    /// Frames the endpoint sent.
    pub tx: VecDeque<Vec<u8>>,
}

impl FrameQueue for MemQueue {
    type RxFrame = Vec<u8>;

    fn receive(&mut self) -> Option<Vec<u8>> {
        self.rx.pop_front()
    }

    fn has_frames(&self) -> bool {
        !self.rx.is_empty()
    }

    fn transmit<R, F: FnOnce(&mut [u8]) -> R>(&mut self, len: usize, fill: F) -> R {
        let mut frame = vec![0; len];
        let r = fill(&mut frame);
        self.tx.push_back(frame);
        r
    }
}
