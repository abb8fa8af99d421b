//! A register-level model of the Intel 82599 10 GbE controller, enough to run the ferrix
//! ixgbe driver unmodified against it: the BAR0 register file ([`Ixgbe82599::mmio_read`],
//! [`Ixgbe82599::mmio_write`]), reset, link, the advanced receive and transmit descriptors,
//! RSS (Toeplitz over IPv4 TCP/UDP with the programmed RSSRK key and RETA, computed by
//! `ferrix_abi::rss`), Flow Director perfect filters, receive checksum validation and transmit
//! checksum insertion, clear-on-read statistics, and EICR/EIMS interrupt causes mapped by IVAR.
//! Frames enter with [`Ixgbe82599::inject_rx`] and leave with [`Ixgbe82599::take_tx`], so a
//! backend (TAP, the inter-VM switch, a test) can sit on either side.
//!
//! Everything the driver writes (ring addresses and lengths, heads and tails, descriptor
//! contents) is untrusted: a bad value is counted in [`ModelCounters`] and the frame or
//! descriptor is dropped; the model never panics on guest input.
//!
//! What it does not model: timing (descriptors are written back at once, no interrupt
//! moderation, no write-back thresholds), receive frames spanning descriptors (the model
//! drops a frame larger than the buffer; real hardware chains descriptors), header split,
//! legacy descriptors, TSO, VLAN stripping, multicast table filtering, SR-IOV/VMDq/DCB, IPv6
//! RSS and filters, the Flow Director bucket hash (see [`fdir`]), EEPROM contents beyond the MAC.
//! A [`Hostile`] mode makes it write back lies on purpose, to test the driver's distrust.
#![forbid(unsafe_code)]

pub mod fdir;
pub mod frames;
pub mod mem;
mod rx;
mod stats;
#[cfg(test)]
mod tests;
mod tx;

pub use mem::{DmaError, GuestMemory, VecMemory};
pub use rx::RxOutcome;
pub use tx::{MAX_TX_PACKET, pseudo_header_for};

use ferrix_ixgbe_regs::desc::TxContext;
use ferrix_ixgbe_regs::fdir::*;
use ferrix_ixgbe_regs::*;
use stats::Stats;

/// Queues the model services (RX and TX): the RSS range. Registers of higher queues are
/// plain storage.
pub const QUEUES: usize = MAX_RSS_QUEUES;
/// Reads of CTRL for which RST stays set after a reset (the driver must poll, bounded).
pub const RESET_READS: u32 = 3;

/// Lies the device tells on receive write-back (for the driver's hostile-device tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Hostile {
    #[default]
    Honest,
    /// Reports a length beyond the posted buffer.
    LengthBeyondBuffer,
    /// Reports a zero length.
    ZeroLength,
    /// Leaves EOP clear (a frame that continues in a descriptor the driver never expects).
    NoEop,
}

/// What went wrong, counted by the model (not registers: for tests and the shim's log).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModelCounters {
    /// DMA outside guest memory (a descriptor or buffer address the driver gave).
    pub dma_errors: u64,
    /// A queue used with an invalid ring (length not a multiple of 128, head or tail beyond it).
    pub bad_rings: u64,
    /// Receive frames larger than the queue's buffer (dropped).
    pub rx_too_big: u64,
    /// Receive frames refused by the MAC address filters.
    pub rx_filtered: u64,
    /// Receive frames while receive was disabled or the link down.
    pub rx_disabled: u64,
    /// Transmit descriptors the model refused (legacy, TSO, unknown type, a bad offload).
    pub tx_bad_descriptors: u64,
    /// Register accesses outside BAR0 or unaligned.
    pub bad_mmio: u64,
}

/// The device.
pub struct Ixgbe82599<M: GuestMemory> {
    mem: M,
    /// BAR0 as plain storage, one word per register; side effects live in the accessors.
    regs: Vec<u32>,
    mac: [u8; 6],
    carrier: bool,
    /// Auto-negotiation was restarted since reset (the link trains only then).
    link_trained: bool,
    reset_reads_left: u32,
    eicr: u32,
    eims: u32,
    stats: Stats,
    fdir: fdir::Fdir,
    tx: Vec<tx::TxQueueState>,
    hostile: Hostile,
    counters: ModelCounters,
}

impl<M: GuestMemory> Ixgbe82599<M> {
    /// A device with MAC `mac` (its "EEPROM"), carrier up, over guest memory `mem`, in its
    /// power-on state.
    pub fn new(mac: [u8; 6], mem: M) -> Self {
        let mut d = Ixgbe82599 {
            mem,
            regs: vec![0; (BAR0_SIZE / 4) as usize],
            mac,
            carrier: true,
            link_trained: false,
            reset_reads_left: 0,
            eicr: 0,
            eims: 0,
            stats: Stats::default(),
            fdir: fdir::Fdir::default(),
            tx: Vec::new(),
            hostile: Hostile::Honest,
            counters: ModelCounters::default(),
        };
        d.reset();
        d
    }

    /// Power-on / software reset: registers to their defaults, rings, filters and counters
    /// cleared, the MAC reloaded into RAL(0)/RAH(0).
    fn reset(&mut self) {
        self.regs.fill(0);
        let m = self.mac;
        self.regs[idx(ral(0))] = u32::from_le_bytes([m[0], m[1], m[2], m[3]]);
        self.regs[idx(rah(0))] = u32::from(u16::from_le_bytes([m[4], m[5]])) | RAH_AV;
        for q in 0..64 {
            // BSIZEPKT 2 KiB, BSIZEHDR 256 bytes (datasheet default 0x402).
            self.regs[idx(srrctl(q))] = 0x402;
        }
        self.regs[idx(MAXFRS)] = 1518 << 16;
        self.regs[idx(HLREG0)] = HLREG0_TXCRCEN | HLREG0_RXCRCSTRP | HLREG0_TXPADEN;
        self.link_trained = false;
        self.eicr = 0;
        self.eims = 0;
        self.stats = Stats::default();
        self.fdir.clear();
        self.tx = vec![tx::TxQueueState::default(); QUEUES];
    }

    /// The guest memory (the shim maps it; tests inspect it).
    pub fn memory(&mut self) -> &mut M {
        &mut self.mem
    }

    /// Plugs or pulls the cable; a change raises EICR.LSC.
    pub fn set_carrier(&mut self, up: bool) {
        if up != self.carrier {
            self.carrier = up;
            self.raise(EICR_LSC);
        }
    }

    /// Whether the link is up (carrier and auto-negotiation restarted since reset).
    pub fn link_up(&self) -> bool {
        self.carrier && self.link_trained
    }

    /// Makes the device lie on receive write-back.
    pub fn set_hostile(&mut self, h: Hostile) {
        self.hostile = h;
    }

    /// What the model counted.
    pub fn counters(&self) -> ModelCounters {
        self.counters
    }

    /// Unmasked pending causes (EICR & EIMS): non-zero means the interrupt line is asserted
    /// (legacy/MSI), and with MSI-X bit v is vector v's message.
    pub fn pending_interrupts(&self) -> u32 {
        self.eicr & self.eims
    }

    fn raise(&mut self, cause: u32) {
        self.eicr |= cause;
    }

    /// The EICR bit of queue `q`'s RX (`tx` false) or TX cause, per IVAR.
    fn queue_cause(&self, q: usize, tx: bool) -> u32 {
        let v = self.regs[idx(ivar(q / 2))];
        let byte = (v >> (16 * (q % 2) + 8 * usize::from(tx))) & 0xff;
        if byte & IVAR_VALID == 0 || byte & 0x3f >= 16 {
            return 0;
        }
        1 << (byte & 0x3f)
    }

    fn reg(&self, off: u32) -> u32 {
        self.regs[idx(off)]
    }

    /// A 32-bit register read at BAR0 offset `off`.
    pub fn mmio_read(&mut self, off: u64) -> u32 {
        let Some(off) = self.check(off) else {
            return 0;
        };
        if let Some(v) = self.stats.read(off) {
            return v;
        }
        match off {
            CTRL => {
                let v = self.reg(CTRL);
                if self.reset_reads_left > 0 {
                    self.reset_reads_left -= 1;
                    v | CTRL_RST
                } else {
                    v
                }
            }
            STATUS => {
                let mut v = 0;
                if self.link_up() {
                    v |= STATUS_LINK_UP;
                }
                if self.reg(CTRL) & CTRL_GIO_MASTER_DISABLE == 0 {
                    v |= STATUS_GIO_MASTER_ENABLE;
                }
                v
            }
            LINKS => {
                if self.link_up() {
                    LINKS_UP | LINKS_SPEED_10G
                } else {
                    0
                }
            }
            EEC => self.reg(EEC) | EEC_PRES | EEC_ARD,
            RDRXCTL => self.reg(RDRXCTL) | RDRXCTL_DMAIDONE,
            AUTOC => self.reg(AUTOC) & !AUTOC_RESTART_AN,
            EICR => core::mem::take(&mut self.eicr),
            EIMS => self.eims,
            EICS | EIMC => 0,
            FDIRCTRL if self.reg(FDIRCTRL) & FDIRCTRL_PBALLOC_MASK != 0 => {
                self.reg(FDIRCTRL) | FDIRCTRL_INIT_DONE
            }
            FDIRCMD => self.reg(FDIRCMD) & !FDIRCMD_CMD_MASK,
            FDIRFREE => self.fdir.free(self.reg(FDIRCTRL)),
            FDIRUSTAT => u32::from(self.fdir.adds) | (u32::from(self.fdir.removes) << 16),
            FDIRFSTAT => {
                u32::from(self.fdir.failed_adds) | (u32::from(self.fdir.failed_removes) << 8)
            }
            FDIRMATCH => core::mem::take(&mut self.fdir.matches),
            FDIRMISS => core::mem::take(&mut self.fdir.misses),
            _ => self.reg(off),
        }
    }

    /// A 32-bit register write at BAR0 offset `off`.
    pub fn mmio_write(&mut self, off: u64, v: u32) {
        let Some(off) = self.check(off) else {
            return;
        };
        if self.stats.is_counter(off) {
            return; // read only
        }
        match off {
            CTRL => {
                if v & CTRL_RST != 0 {
                    self.reset();
                    self.reset_reads_left = RESET_READS;
                }
                self.regs[idx(CTRL)] = v & !(CTRL_RST | CTRL_LRST);
            }
            STATUS | LINKS => {}
            AUTOC => {
                if v & AUTOC_RESTART_AN != 0 {
                    self.link_trained = true;
                }
                self.regs[idx(AUTOC)] = v & !AUTOC_RESTART_AN;
            }
            EICR => self.eicr &= !v,
            EICS => self.raise(v & EIMC_ALL),
            EIMS => self.eims |= v,
            EIMC => self.eims &= !v,
            FDIRCTRL => {
                self.fdir.clear();
                self.regs[idx(FDIRCTRL)] = v & !FDIRCTRL_INIT_DONE;
            }
            FDIRCMD => {
                self.regs[idx(FDIRCMD)] = v;
                let r = fdir::Regs {
                    ctrl: self.reg(FDIRCTRL),
                    ipsa: self.reg(FDIRIPSA),
                    ipda: self.reg(FDIRIPDA),
                    port: self.reg(FDIRPORT),
                    hash: self.reg(FDIRHASH),
                    cmd: v,
                };
                self.fdir.command(&r);
            }
            _ => self.regs[idx(off)] = v,
        }
    }

    fn check(&mut self, off: u64) -> Option<u32> {
        if !off.is_multiple_of(4) || off >= BAR0_SIZE {
            self.counters.bad_mmio += 1;
            return None;
        }
        Some(off as u32)
    }

    /// Reads the per-queue ring registers: (base, entries, head, tail), or None (counted) if
    /// the ring is not usable.
    fn ring(&mut self, bal: u32, len: u32, head: u32, tail: u32) -> Option<(u64, u32, u32, u32)> {
        let base = u64::from(self.reg(bal) & !0x7f) | (u64::from(self.reg(bal + 4)) << 32);
        let bytes = self.reg(len);
        let entries = bytes / 16;
        let (h, t) = (self.reg(head), self.reg(tail));
        if bytes == 0 || !bytes.is_multiple_of(128) || h >= entries || t >= entries {
            self.counters.bad_rings += 1;
            return None;
        }
        Some((base, entries, h, t))
    }
}

/// Index of a register in the storage (offsets are checked before).
const fn idx(off: u32) -> usize {
    (off / 4) as usize
}

/// The transmit context slots of a queue, by IDX.
type ContextSlots = [Option<TxContext>; 2];
