//! `--pcap FILE`: every frame the VM sends or receives, as a classic pcap file (Ethernet link
//! type, microsecond wall-clock timestamps, snap length 65535). The file is unbuffered, so it
//! is complete after every frame even if the shim is killed.

use std::fs::File;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};

use crate::error::ShimError;

/// An open capture file.
pub struct PcapSink {
    writer: PcapWriter<File>,
    /// Frames that could not be written (disk full, ...); the capture then has gaps.
    pub errors: u64,
}

impl PcapSink {
    /// Creates (truncates) `path` and writes the pcap header.
    pub fn create(path: &Path) -> Result<Self, ShimError> {
        let err = |source: std::io::Error| ShimError::Pcap {
            path: path.to_path_buf(),
            source,
        };
        let file = File::create(path).map_err(err)?;
        let header = PcapHeader {
            datalink: DataLink::ETHERNET,
            endianness: pcap_file::Endianness::native(),
            ..Default::default()
        };
        let writer = PcapWriter::with_header(file, header)
            .map_err(|e| err(std::io::Error::other(e.to_string())))?;
        Ok(PcapSink { writer, errors: 0 })
    }

    /// Appends `frame` with the current time.
    pub fn write(&mut self, frame: &[u8]) {
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let snap = &frame[..frame.len().min(65535)];
        if self
            .writer
            .write_packet(&PcapPacket::new(ts, len, snap))
            .is_err()
        {
            self.errors += 1;
        }
    }
}
