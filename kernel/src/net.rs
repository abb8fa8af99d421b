//! The NIC as apps see it: device information and this core's queue pair. At boot the kernel
//! installs the queue pairs of the NIC it found, pair `i` for core `i`; each core takes its
//! own once with [`take_queue`] and then drives it without locks.

use crate::percpu::MAX_CPUS;
use alloc::boxed::Box;
use alloc::vec::Vec;
use ferrix_drivers::{NicInfo, QueuePair};

static INFO: spin::Once<NicInfo> = spin::Once::new();
static QUEUES: [spin::Mutex<Option<Box<dyn QueuePair>>>; MAX_CPUS] =
    [const { spin::Mutex::new(None) }; MAX_CPUS];

/// Formats a MAC address as `aa:bb:cc:dd:ee:ff`.
pub struct MacFmt(pub [u8; 6]);

impl core::fmt::Display for MacFmt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

pub(crate) fn has_nic() -> bool {
    INFO.get().is_some()
}

pub(crate) fn install(info: NicInfo, queues: Vec<Box<dyn QueuePair>>) {
    INFO.call_once(|| info);
    for (slot, q) in QUEUES.iter().zip(queues) {
        *slot.lock() = Some(q);
    }
}

/// The NIC, if the VM has one.
pub fn info() -> Option<NicInfo> {
    INFO.get().copied()
}

/// Takes this core's queue pair (None: no NIC, fewer queue pairs than cores, or taken already).
/// Cores without a pair of their own can take another core's with [`take_queue_of`].
pub fn take_queue() -> Option<Box<dyn QueuePair>> {
    take_queue_of(crate::percpu::core_id())
}

/// Takes queue pair `i`.
pub fn take_queue_of(i: usize) -> Option<Box<dyn QueuePair>> {
    QUEUES.get(i)?.lock().take()
}
