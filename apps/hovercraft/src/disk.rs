//! The replica's persistent state on the VM's disk (`ferrix run --disk FILE`): sector 0 names
//! the replica (magic, id, cluster size, a hash of `peers=`), then the records of
//! `ferrix_raft::persist` one after the other, each padded to whole sectors. At boot the
//! records are replayed into the `Durable` state the core restarts from; each later batch of
//! writes is appended and flushed (VIRTIO_BLK_T_FLUSH: QEMU fdatasyncs the image) before any
//! message of the same step is sent: the core's fsync rule.
//!
//! A disk of zeros is a fresh replica. A disk written by another replica or cluster is
//! refused (booting it would let a replica vote with someone else's term and log).

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::net::Ipv4Addr;
use ferrix::blk::{self, SECTOR};
use ferrix_raft::persist::{self, RECORD_HEADER};
use ferrix_raft::{Durable, Write};

const SUPER_MAGIC: &[u8; 8] = b"FXHOVER1";

/// The log on disk.
pub struct DiskLog {
    /// Next free sector.
    next: u64,
    /// Next record's sequence number.
    seq: u32,
    capacity: u64,
    buf: Vec<u8>,
}

/// What the boot found.
pub struct Opened {
    pub log: DiskLog,
    pub durable: Durable,
    pub records: u32,
    pub sectors: u64,
}

fn cluster_hash(peers: &[Ipv4Addr]) -> u64 {
    // FNV-1a over the addresses in order.
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in peers.iter().flat_map(|p| p.octets()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn io(what: &str, e: blk::BlkError) -> String {
    format!("disk: {what}: {e}")
}

impl DiskLog {
    /// Opens (or formats) the disk for replica `id` of `peers`; None if the VM has no disk.
    pub fn open(id: u8, peers: &[Ipv4Addr]) -> Option<Result<Opened, String>> {
        let capacity = blk::capacity()?;
        Some(Self::open_on(capacity, id, peers))
    }

    fn open_on(capacity: u64, id: u8, peers: &[Ipv4Addr]) -> Result<Opened, String> {
        if capacity < 2 {
            return Err(format!("disk: {capacity} sectors is too small"));
        }
        let mut sb = vec![0u8; SECTOR];
        blk::read(0, &mut sb).map_err(|e| io("reading sector 0", e))?;
        let hash = cluster_hash(peers);
        let mut want = vec![0u8; SECTOR];
        want[..8].copy_from_slice(SUPER_MAGIC);
        want[8] = id;
        want[9] = peers.len() as u8;
        want[10..18].copy_from_slice(&hash.to_be_bytes());
        if sb.iter().all(|&b| b == 0) {
            blk::write(0, &want).map_err(|e| io("formatting", e))?;
            blk::flush().map_err(|e| io("flushing", e))?;
        } else if sb[..8] != *SUPER_MAGIC {
            return Err("disk: not a HovercRaft replica's disk (and not blank)".into());
        } else if sb[..18] != want[..18] {
            return Err(format!(
                "disk: written by replica {} of {} of another cluster or id (this is replica {id} of {}; give each replica its own disk)",
                sb[8],
                sb[9],
                peers.len()
            ));
        }
        let mut log = DiskLog {
            next: 1,
            seq: 0,
            capacity,
            buf: Vec::new(),
        };
        let durable = log.replay()?;
        Ok(Opened {
            records: log.seq,
            sectors: capacity,
            durable,
            log,
        })
    }

    /// Reads records from sector 1 until the first that is not whole and valid.
    fn replay(&mut self) -> Result<Durable, String> {
        let mut d = Durable::default();
        let mut first = vec![0u8; SECTOR];
        while self.next < self.capacity {
            blk::read(self.next, &mut first).map_err(|e| io("replaying", e))?;
            let Some(h) = first.first_chunk::<RECORD_HEADER>().copied() else {
                break;
            };
            let Ok(len) = persist::record_len(&h, self.seq) else {
                break;
            };
            let sectors = (RECORD_HEADER + len).div_ceil(SECTOR) as u64;
            if self.next + sectors > self.capacity {
                break;
            }
            let mut rec = vec![0u8; sectors as usize * SECTOR];
            blk::read(self.next, &mut rec).map_err(|e| io("replaying", e))?;
            let Ok(writes) = persist::decode_payload(&h, &rec[RECORD_HEADER..RECORD_HEADER + len])
            else {
                break;
            };
            for w in &writes {
                d.apply(w);
            }
            self.seq += 1;
            self.next += sectors;
        }
        Ok(d)
    }

    /// Appends `writes` as one record and makes it durable.
    pub fn append(&mut self, writes: &[Write]) -> Result<(), String> {
        if writes.is_empty() {
            return Ok(());
        }
        self.buf.clear();
        persist::encode_record(self.seq, writes, &mut self.buf);
        let sectors = self.buf.len().div_ceil(SECTOR);
        self.buf.resize(sectors * SECTOR, 0);
        if self.next + sectors as u64 > self.capacity {
            return Err(format!(
                "disk full: {} of {} sectors used, a record of {sectors} more does not fit",
                self.next, self.capacity
            ));
        }
        blk::write(self.next, &self.buf).map_err(|e| io("appending", e))?;
        blk::flush().map_err(|e| io("flushing", e))?;
        self.next += sectors as u64;
        self.seq += 1;
        Ok(())
    }

    /// Sectors used (the superblock included).
    pub fn used(&self) -> u64 {
        self.next
    }
}
