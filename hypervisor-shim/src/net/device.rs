//! The virtio-net device model: virtio-mmio registers (vCPU threads, MMIO exits) and queue
//! processing (the device thread): TX chains to the backend, frames from the backend into
//! the RX queue chosen by RSS, control commands, used rings and interrupts.
//!
//! All state sits behind one mutex. Any driver error found in a ring marks the device
//! broken (DEVICE_NEEDS_RESET plus a configuration-change interrupt): it then stops
//! processing until the driver resets it, and the VM keeps running.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard};

use vmm_sys_util::eventfd::{EFD_NONBLOCK, EventFd};

use super::backend::{Backend, MAX_FRAME};
use super::ctrl::{self, CtrlAction};
use super::header::{
    FERRIX_VENDOR_ID, NET_HDR_LEN, VIRTIO_ID_NET, VIRTIO_NET_F_CTRL_VQ, VIRTIO_NET_F_MAC,
    VIRTIO_NET_F_MQ, VIRTIO_NET_F_STATUS, config_space, rx_header, split_tx,
};
use super::pcap::PcapSink;
use super::rss::Steering;
use super::stats::{NetStats, QueueStats};
use super::{QUEUE_NUM_MAX, format_mac};
use crate::hypercall::GuestMem;
use crate::virtio::mmio::{Effect, REG_CONFIG, REG_QUEUE_NOTIFY, Transport};
use crate::virtio::queue::QueueError;
use crate::virtio::{INT_CONFIG_CHANGE, INT_USED_BUFFER, STATUS_DRIVER_OK, VIRTIO_F_VERSION_1};

/// How the device interrupts the guest.
pub trait Interrupt: Send + Sync {
    /// Raises the device's interrupt line (edge).
    fn trigger(&self);
}

impl Interrupt for EventFd {
    fn trigger(&self) {
        // A full eventfd counter still means "pending": nothing is lost by ignoring EAGAIN.
        let _ = self.write(1);
    }
}

/// Device parameters.
#[derive(Clone, Debug)]
pub struct DeviceConfig {
    /// MAC address.
    pub mac: [u8; 6],
    /// `max_virtqueue_pairs` (1..=16).
    pub pairs: u16,
    /// Toeplitz key.
    pub rss_key: Vec<u8>,
}

/// The frame I/O owned by the device thread.
pub struct NetIo {
    /// Where frames go.
    pub backend: Box<dyn Backend>,
    /// Optional capture.
    pub pcap: Option<PcapSink>,
}

struct State {
    transport: Transport,
    active_pairs: u16,
    steering: Steering,
    stats: NetStats,
}

/// One virtio-net device.
pub struct NetDevice {
    mem: Arc<dyn GuestMem + Send + Sync>,
    mac: [u8; 6],
    max_pairs: u16,
    irq: Arc<dyn Interrupt>,
    state: Mutex<State>,
    kicks: Vec<EventFd>,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl NetDevice {
    /// A device in reset state over guest memory `mem`, interrupting through `irq`.
    pub fn new(
        mem: Arc<dyn GuestMem + Send + Sync>,
        cfg: DeviceConfig,
        irq: Arc<dyn Interrupt>,
    ) -> io::Result<Self> {
        let pairs = cfg.pairs.clamp(1, super::MAX_QUEUE_PAIRS as u16);
        let mut features =
            (1u64 << VIRTIO_F_VERSION_1) | (1 << VIRTIO_NET_F_MAC) | (1 << VIRTIO_NET_F_STATUS);
        if pairs > 1 {
            features |= (1 << VIRTIO_NET_F_CTRL_VQ) | (1 << VIRTIO_NET_F_MQ);
        }
        let queues = 2 * usize::from(pairs) + usize::from(pairs > 1);
        let kicks = (0..queues)
            .map(|_| EventFd::new(EFD_NONBLOCK))
            .collect::<io::Result<Vec<_>>>()?;
        let transport = Transport::new(
            VIRTIO_ID_NET,
            FERRIX_VENDOR_ID,
            features,
            queues,
            QUEUE_NUM_MAX,
        );
        let stats = NetStats {
            queues: vec![QueueStats::default(); queues],
            active_pairs: 1,
            ..Default::default()
        };
        Ok(NetDevice {
            mem,
            mac: cfg.mac,
            max_pairs: pairs,
            irq,
            state: Mutex::new(State {
                transport,
                active_pairs: 1,
                steering: Steering::new(cfg.rss_key, 1),
                stats,
            }),
            kicks,
        })
    }

    /// The MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    /// Number of virtqueues (2 per pair, plus the control queue when pairs > 1).
    pub fn num_queues(&self) -> usize {
        self.kicks.len()
    }

    /// The control queue's index, when there is one.
    pub fn ctrl_queue(&self) -> Option<usize> {
        (self.max_pairs > 1).then_some(2 * usize::from(self.max_pairs))
    }

    /// The per-queue notification eventfds (registered as KVM ioeventfds on QueueNotify).
    pub fn kicks(&self) -> &[EventFd] {
        &self.kicks
    }

    /// A snapshot of the statistics.
    pub fn stats(&self) -> NetStats {
        let s = lock(&self.state);
        let mut st = s.stats.clone();
        st.broken = s.transport.needs_reset;
        st.active_pairs = s.active_pairs;
        st
    }

    /// An MMIO read at `offset` inside the register page.
    pub fn mmio_read(&self, offset: u64, data: &mut [u8]) {
        let s = lock(&self.state);
        if offset >= REG_CONFIG {
            let config = config_space(self.mac, self.max_pairs);
            for (i, b) in data.iter_mut().enumerate() {
                let at = (offset - REG_CONFIG).checked_add(i as u64);
                *b = at
                    .and_then(|a| config.get(usize::try_from(a).ok()?))
                    .copied()
                    .unwrap_or(0);
            }
        } else if data.len() == 4 {
            data.copy_from_slice(&s.transport.read(offset).to_le_bytes());
        } else {
            data.fill(0);
        }
    }

    /// An MMIO write at `offset` inside the register page.
    pub fn mmio_write(&self, offset: u64, data: &[u8]) {
        if offset == REG_QUEUE_NOTIFY && matches!(data.len(), 1 | 2) {
            // A narrow notify that the 4-byte ioeventfd did not match: forward it.
            let mut v = [0u8; 2];
            v[..data.len()].copy_from_slice(data);
            if let Some(k) = self.kicks.get(usize::from(u16::from_le_bytes(v))) {
                let _ = k.write(1);
            }
            return;
        }
        // The config space is read-only (the MAC is not writable in virtio 1.x).
        let Ok(bytes) = <[u8; 4]>::try_from(data) else {
            return;
        };
        if offset >= REG_CONFIG {
            return;
        }
        let mut s = lock(&self.state);
        match s.transport.write(offset, u32::from_le_bytes(bytes)) {
            Effect::None | Effect::Status => {}
            Effect::Notify(q) => {
                if let Some(k) = self.kicks.get(usize::from(q)) {
                    let _ = k.write(1);
                }
            }
            Effect::Reset => {
                s.active_pairs = 1;
                s.steering.set_pairs(1);
            }
            Effect::QueueReady(q) => {
                let mem_size = self.mem.size();
                let layout =
                    s.transport.queues[usize::from(q)].check_layout(mem_size, QUEUE_NUM_MAX);
                if let Err(e) = layout {
                    self.mark_broken(&mut s, q, e);
                }
            }
        }
    }

    fn mark_broken(&self, s: &mut State, queue: u16, e: QueueError) {
        s.transport.needs_reset = true;
        s.transport.interrupt_status |= INT_CONFIG_CHANGE;
        s.stats.broken_events += 1;
        s.stats.broken_reason = Some(format!("queue {queue}: {e}"));
        s.stats.interrupts += 1;
        self.irq.trigger();
    }

    fn running(s: &State) -> bool {
        s.transport.status() & STATUS_DRIVER_OK != 0 && !s.transport.needs_reset
    }

    fn used_interrupt(&self, s: &mut State, queue: usize) {
        if s.transport.queues[queue].wants_interrupt(&*self.mem) {
            s.transport.interrupt_status |= INT_USED_BUFFER;
            s.stats.interrupts += 1;
            self.irq.trigger();
        }
    }

    /// Serves a notification of queue `q` (TX or control; RX notifications need no work).
    pub fn process_queue(&self, q: usize, io: &mut NetIo) {
        let mut s = lock(&self.state);
        if !Self::running(&s) || q >= self.num_queues() {
            return;
        }
        if Some(q) == self.ctrl_queue() {
            self.process_ctrl(&mut s, q);
        } else if q % 2 == 1 {
            self.process_tx(&mut s, q, io);
        }
    }

    fn process_tx(&self, s: &mut State, q: usize, io: &mut NetIo) {
        let mem = &*self.mem;
        let mut used = 0;
        loop {
            let chain = match s.transport.queues[q].pop(mem) {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => return self.mark_broken(s, q as u16, e),
            };
            match chain.read_all(mem, MAX_FRAME + NET_HDR_LEN) {
                Err(e) => return self.mark_broken(s, q as u16, e),
                Ok(None) => s.stats.drops.tx_too_big += 1,
                Ok(Some(buf)) => match split_tx(&buf) {
                    None => s.stats.drops.tx_too_short += 1,
                    Some(frame) => {
                        if let Some(p) = io.pcap.as_mut() {
                            p.write(frame);
                        }
                        if io.backend.send(frame).is_ok() {
                            let st = &mut s.stats.queues[q];
                            st.frames += 1;
                            st.bytes += frame.len() as u64;
                        } else {
                            s.stats.drops.tx_backend_error += 1;
                        }
                    }
                },
            }
            if let Err(e) = s.transport.queues[q].push_used(mem, chain.head, 0) {
                return self.mark_broken(s, q as u16, e);
            }
            used += 1;
        }
        if used > 0 {
            self.used_interrupt(s, q);
        }
    }

    fn process_ctrl(&self, s: &mut State, q: usize) {
        let mem = &*self.mem;
        let mq = s.transport.has_feature(VIRTIO_NET_F_MQ);
        let mut used = 0;
        loop {
            let chain = match s.transport.queues[q].pop(mem) {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => return self.mark_broken(s, q as u16, e),
            };
            let action = match chain.read_all(mem, 64) {
                Err(e) => return self.mark_broken(s, q as u16, e),
                Ok(Some(cmd)) => ctrl::decode(&cmd, self.max_pairs, mq),
                Ok(None) => CtrlAction::Refuse,
            };
            if let CtrlAction::SetPairs(p) = action {
                s.active_pairs = p;
                s.steering.set_pairs(p);
            }
            let written = match chain.write_status(mem, &[action.ack()]) {
                Ok(n) => n,
                Err(e) => return self.mark_broken(s, q as u16, e),
            };
            if let Err(e) = s.transport.queues[q].push_used(mem, chain.head, written) {
                return self.mark_broken(s, q as u16, e);
            }
            s.stats.queues[q].frames += 1;
            used += 1;
        }
        if used > 0 {
            self.used_interrupt(s, q);
        }
    }

    /// Delivers one frame from the backend to the guest (or drops and counts it).
    pub fn receive(&self, frame: &[u8], io: &mut NetIo) {
        let mem = &*self.mem;
        let mut s = lock(&self.state);
        let unicast = frame.first().is_some_and(|b| b & 1 == 0);
        if io.backend.filters_unicast() && unicast && frame.get(..6) != Some(&self.mac[..]) {
            s.stats.drops.rx_not_for_us += 1;
            return;
        }
        if !Self::running(&s) {
            s.stats.drops.rx_not_ready += 1;
            return;
        }
        let pair = if s.active_pairs > 1 {
            s.steering.pair_for(frame)
        } else {
            0
        };
        let q = 2 * usize::from(pair);
        let chain = match s.transport.queues[q].pop(mem) {
            Ok(Some(c)) => c,
            Ok(None) => {
                s.stats.drops.rx_no_buffer += 1;
                return;
            }
            Err(e) => return self.mark_broken(&mut s, q as u16, e),
        };
        let total = NET_HDR_LEN + frame.len();
        if chain.writable_len() < total as u64 && chain.descs.iter().all(|d| d.is_write()) {
            // Keep the buffer for a frame that fits; this one is dropped.
            s.transport.queues[q].undo_pop();
            s.stats.drops.rx_too_big += 1;
            return;
        }
        let mut buf = Vec::with_capacity(total);
        buf.extend_from_slice(&rx_header());
        buf.extend_from_slice(frame);
        let written = match chain.write_all(mem, &buf) {
            Ok(n) => n,
            Err(e) => return self.mark_broken(&mut s, q as u16, e),
        };
        if let Err(e) = s.transport.queues[q].push_used(mem, chain.head, written) {
            return self.mark_broken(&mut s, q as u16, e);
        }
        if let Some(p) = io.pcap.as_mut() {
            p.write(frame);
        }
        let st = &mut s.stats.queues[q];
        st.frames += 1;
        st.bytes += frame.len() as u64;
        self.used_interrupt(&mut s, q);
    }

    /// Counts a frame the backend failed to deliver.
    pub fn count_rx_backend_error(&self) {
        lock(&self.state).stats.drops.rx_backend_error += 1;
    }

    /// A one-line description for logs.
    pub fn describe(&self) -> String {
        format!(
            "virtio-net {} with {} queue pair(s)",
            format_mac(&self.mac),
            self.max_pairs
        )
    }
}
