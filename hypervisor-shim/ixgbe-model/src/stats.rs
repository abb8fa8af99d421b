//! The statistics registers: counters the device increments, each cleared when the driver
//! reads it. The 36-bit octet counters (GORC, GOTC) read as a low and a high half; reading the
//! high half clears the counter (the datasheet's latch rule was not verified here: a driver
//! reads the low half first, then the high half, as ferrix's does).

use ferrix_ixgbe_regs::*;

/// Queue counters kept per queue (QPRC, QPTC, QPRDC exist for queues 0..15).
const Q: usize = 16;

#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub gprc: u32,
    pub bprc: u32,
    pub mprc: u32,
    pub gptc: u32,
    pub gorc: u64,
    pub gotc: u64,
    pub mpc0: u32,
    pub roc: u32,
    pub tpr: u32,
    pub tpt: u32,
    pub qprc: [u32; Q],
    pub qptc: [u32; Q],
    pub qprdc: [u32; Q],
}

/// Which per-queue counter block `off` falls in, and the queue.
fn queue_counter(off: u32) -> Option<(u8, usize)> {
    (0..Q).find_map(|q| {
        if off == qprc(q) {
            Some((0, q))
        } else if off == qptc(q) {
            Some((1, q))
        } else if off == qprdc(q) {
            Some((2, q))
        } else {
            None
        }
    })
}

impl Stats {
    /// Whether `off` is a (read-only) counter.
    pub fn is_counter(&self, off: u32) -> bool {
        matches!(
            off,
            GPRC | BPRC
                | MPRC
                | GPTC
                | GORCL
                | GORCH
                | GOTCL
                | GOTCH
                | MPC0
                | ROC
                | TPR
                | TPT
                | CRCERRS
        ) || queue_counter(off).is_some()
    }

    /// Reads (and clears) the counter at `off`; None if `off` is not a counter.
    pub fn read(&mut self, off: u32) -> Option<u32> {
        let take = core::mem::take::<u32>;
        Some(match off {
            GPRC => take(&mut self.gprc),
            BPRC => take(&mut self.bprc),
            MPRC => take(&mut self.mprc),
            GPTC => take(&mut self.gptc),
            MPC0 => take(&mut self.mpc0),
            ROC => take(&mut self.roc),
            TPR => take(&mut self.tpr),
            TPT => take(&mut self.tpt),
            CRCERRS => 0,
            GORCL => self.gorc as u32,
            GORCH => (core::mem::take(&mut self.gorc) >> 32) as u32 & 0xf,
            GOTCL => self.gotc as u32,
            GOTCH => (core::mem::take(&mut self.gotc) >> 32) as u32 & 0xf,
            _ => {
                let (kind, q) = queue_counter(off)?;
                match kind {
                    0 => take(&mut self.qprc[q]),
                    1 => take(&mut self.qptc[q]),
                    _ => take(&mut self.qprdc[q]),
                }
            }
        })
    }
}
