//! Live statistics (`ferrix run --stats-live`, `--stats-json FILE`): receives the guest's
//! records (format: `ferrix_abi::stats`), whole from the shim's `STATS_PUSH` sink or as a byte
//! stream from QEMU's stats socket, validates each, and writes the series as JSON lines and/or
//! redraws a per-core table in the console stream.
//!
//! The channel is hostile: a record `ferrix_abi::stats::parse` refuses, or a line longer than
//! `RECORD_MAX`, is counted (`host_dropped` in every JSON object, and one stderr line at the
//! end) and dropped; nothing the guest sends can make this panic.

use ferrix_abi::stats::{RECORD_MAX, parse};
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The per-core table's columns: (header, record key).
pub const COLUMNS: &[(&str, &str)] = &[
    ("rx", "rx"),
    ("tx", "tx"),
    ("drops", "drops"),
    ("events", "events"),
    ("steals", "steals"),
    ("ipis_sent", "ipis_sent"),
    ("ipi_runs", "ipi_runs"),
    ("ready", "ready_depth"),
];

/// Shortest time between two redraws of the table.
const MIN_REDRAW: std::time::Duration = std::time::Duration::from_millis(50);

/// First line of every table drawn.
pub const TABLE_TITLE: &str = "ferrix stats-live";

/// One decoded record: header, VM-wide keys and each core's keys, in the guest's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub seq: u64,
    pub t_ns: u64,
    pub is_final: bool,
    pub vm: Vec<(String, u64)>,
    pub cores: Vec<Vec<(String, u64)>>,
}

impl Decoded {
    /// Decodes one record (with its `\n`), or None if it is malformed.
    pub fn decode(line: &[u8]) -> Option<Decoded> {
        let r = parse(line).ok()?;
        let mut d = Decoded {
            seq: r.header.seq,
            t_ns: r.header.t_ns,
            is_final: r.header.is_final,
            vm: Vec::new(),
            cores: Vec::new(),
        };
        for (k, v) in r.fields() {
            match d.cores.last_mut() {
                _ if k == "core" => d.cores.push(vec![(k.to_string(), v)]),
                Some(core) => core.push((k.to_string(), v)),
                None => d.vm.push((k.to_string(), v)),
            }
        }
        Some(d)
    }

    /// Core `core`'s value of `key` (0 when absent).
    pub fn get(&self, core: usize, key: &str) -> u64 {
        self.cores
            .get(core)
            .and_then(|c| c.iter().find(|(k, _)| k == key))
            .map_or(0, |(_, v)| *v)
    }
}

/// `{"k":v,...}` of `fields` (keys are `[a-z0-9_.]`: nothing to escape).
fn json_object(out: &mut String, fields: &[(String, u64)]) {
    out.push('{');
    for (i, (k, v)) in fields.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(out, "{sep}\"{k}\":{v}");
    }
    out.push('}');
}

/// The JSON line of one record: host timestamps, header, counters.
pub fn json_line(d: &Decoded, unix_ms: u128, host_ms: f64, host_dropped: u64) -> String {
    let mut s = format!(
        "{{\"unix_ms\":{unix_ms},\"host_ms\":{host_ms:.3},\"seq\":{},\"t_ns\":{},\"final\":{},\"host_dropped\":{host_dropped},\"vm\":",
        d.seq, d.t_ns, d.is_final
    );
    json_object(&mut s, &d.vm);
    s.push_str(",\"cores\":[");
    for (i, c) in d.cores.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        json_object(&mut s, c);
    }
    s.push_str("]}\n");
    s
}

/// The table for `d`, with per-second rates of rx and tx against `prev`.
pub fn table(d: &Decoded, prev: Option<&Decoded>, host_dropped: u64) -> String {
    let mut s = format!(
        "{TABLE_TITLE}: record {} at {:.3} s guest time{}{}\n",
        d.seq,
        d.t_ns as f64 / 1e9,
        if d.is_final { " (final)" } else { "" },
        if host_dropped > 0 {
            format!(", {host_dropped} malformed dropped")
        } else {
            String::new()
        }
    );
    let _ = write!(s, "{:>4}", "core");
    for (h, _) in COLUMNS {
        let _ = write!(s, " {h:>12}");
    }
    let _ = writeln!(s, " {:>10} {:>10}", "rx/s", "tx/s");
    let dt = prev.map_or(0.0, |p| d.t_ns.saturating_sub(p.t_ns) as f64 / 1e9);
    for core in 0..d.cores.len() {
        let _ = write!(s, "{core:>4}");
        for (_, k) in COLUMNS {
            let _ = write!(s, " {:>12}", d.get(core, k));
        }
        let rate = |k: &str| match prev {
            Some(p) if dt > 0.0 => d.get(core, k).saturating_sub(p.get(core, k)) as f64 / dt,
            _ => 0.0,
        };
        let _ = writeln!(s, " {:>10.0} {:>10.0}", rate("rx"), rate("tx"));
    }
    s
}

/// The console stream with a table redrawn in place under it: console bytes written since
/// the last table leave that table standing, and the next one is drawn below them.
struct Term {
    out: Box<dyn Write + Send>,
    /// Lines of the table last drawn, if nothing was written after it.
    table_lines: usize,
    at_line_start: bool,
}

impl Term {
    fn draw(&mut self, text: &str) {
        let mut s = String::new();
        if self.table_lines > 0 {
            // Up to the table's first line, column 1, then clear to the end of the screen.
            let _ = write!(s, "\x1b[{}F\x1b[J", self.table_lines);
        } else if !self.at_line_start {
            s.push('\n');
        }
        s.push_str(text);
        let _ = self
            .out
            .write_all(s.as_bytes())
            .and_then(|()| self.out.flush());
        self.table_lines = text.lines().count();
        self.at_line_start = true;
    }
}

/// The console writer handed to the VMM when a table is shown.
struct TermConsole(Arc<Mutex<Term>>);

impl Write for TermConsole {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut t = lock(&self.0);
        if !buf.is_empty() {
            t.table_lines = 0;
            t.at_line_start = buf.ends_with(b"\n");
        }
        t.out.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        lock(&self.0).out.flush()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct State {
    json: Option<std::io::BufWriter<std::fs::File>>,
    term: Option<Arc<Mutex<Term>>>,
    started: Instant,
    records: u64,
    dropped: u64,
    last: Option<Decoded>,
    /// When the table was last drawn, and the shortest time between two redraws.
    drawn: Option<Instant>,
    min_redraw: std::time::Duration,
    /// An incomplete line of the QEMU stream, and whether the current line is being skipped
    /// (it grew past `RECORD_MAX`).
    partial: Vec<u8>,
    skipping: bool,
}

impl State {
    fn record(&mut self, line: &[u8]) {
        let Some(d) = Decoded::decode(line) else {
            self.dropped += 1;
            return;
        };
        self.records += 1;
        if let Some(j) = &mut self.json {
            let unix_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |t| t.as_millis());
            let host_ms = self.started.elapsed().as_secs_f64() * 1e3;
            // A failing file (disk full) must not stop the VM: the rest of the series is lost.
            let _ = j.write_all(json_line(&d, unix_ms, host_ms, self.dropped).as_bytes());
        }
        // At most one redraw per MIN_REDRAW (a guest pushing in a tight loop must not flood
        // the terminal); the final record is always drawn.
        let due = self.drawn.is_none_or(|t| t.elapsed() >= self.min_redraw);
        if let Some(t) = &self.term
            && (due || d.is_final)
        {
            let text = table(&d, self.last.as_ref(), self.dropped);
            lock(t).draw(&text);
            self.drawn = Some(Instant::now());
        }
        self.last = Some(d);
    }

    fn stream(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let (chunk, rest, eol) = match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => (&bytes[..=i], &bytes[i + 1..], true),
                None => (bytes, &[][..], false),
            };
            bytes = rest;
            if !self.skipping {
                self.partial.extend_from_slice(chunk);
                if self.partial.len() > RECORD_MAX {
                    self.partial.clear();
                    self.skipping = true;
                    self.dropped += 1;
                }
            }
            if eol {
                if !self.skipping {
                    let line = std::mem::take(&mut self.partial);
                    self.record(&line);
                }
                self.skipping = false;
            }
        }
    }
}

/// What a run's live statistics amounted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Records accepted.
    pub records: u64,
    /// Records refused (malformed, oversized, cut off at the end).
    pub dropped: u64,
}

/// The receiver of one run's records. Cheap to clone; every clone feeds the same series.
#[derive(Clone)]
pub struct LiveStats(Arc<Mutex<State>>);

impl LiveStats {
    /// Writes JSON lines to `json` (if given) and draws the table into the console stream (if
    /// `table`). Returns the receiver and the console writer to hand to the VMM.
    pub fn new(
        json: Option<&Path>,
        table: bool,
        console: Box<dyn Write + Send>,
    ) -> std::io::Result<(LiveStats, Box<dyn Write + Send>)> {
        let json = json
            .map(|p| std::fs::File::create(p).map(std::io::BufWriter::new))
            .transpose()?;
        let (term, console): (_, Box<dyn Write + Send>) = if table {
            let t = Arc::new(Mutex::new(Term {
                out: console,
                table_lines: 0,
                at_line_start: true,
            }));
            (Some(t.clone()), Box::new(TermConsole(t)))
        } else {
            (None, console)
        };
        let state = State {
            json,
            term,
            started: Instant::now(),
            records: 0,
            dropped: 0,
            last: None,
            drawn: None,
            min_redraw: MIN_REDRAW,
            partial: Vec::new(),
            skipping: false,
        };
        Ok((LiveStats(Arc::new(Mutex::new(state))), console))
    }

    /// One whole record (the shim's `STATS_PUSH`).
    pub fn record(&self, bytes: &[u8]) {
        lock(&self.0).record(bytes);
    }

    /// Bytes of the QEMU stream: records separated by `\n`, possibly cut anywhere.
    pub fn stream(&self, bytes: &[u8]) {
        lock(&self.0).stream(bytes);
    }

    /// Ends the series: an unfinished line counts as dropped; the JSON file is flushed.
    pub fn finish(&self) -> std::io::Result<Summary> {
        let mut s = lock(&self.0);
        if !s.partial.is_empty() || s.skipping {
            s.dropped += 1;
            s.partial.clear();
            s.skipping = false;
        }
        if let Some(j) = &mut s.json {
            j.flush()?;
        }
        Ok(Summary {
            records: s.records,
            dropped: s.dropped,
        })
    }
}

/// The host end of QEMU's stats channel: a unix socket QEMU's `-chardev socket` connects to
/// (qemu/stats.profile); a thread feeds what arrives to a [`LiveStats`].
pub struct StatsSocket {
    path: std::path::PathBuf,
    stop: Arc<std::sync::atomic::AtomicBool>,
    done: std::sync::mpsc::Receiver<()>,
}

impl StatsSocket {
    /// Listens on a fresh socket in the temporary directory.
    pub fn listen(live: LiveStats) -> std::io::Result<StatsSocket> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "ferrix-stats-{}-{}.sock",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path)?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (tx, done) = std::sync::mpsc::channel();
        let st = stop.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            // One connection (QEMU's); poll for it so that a QEMU that never came does not
            // keep this thread alive.
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        let mut buf = [0u8; 8192];
                        loop {
                            match conn.read(&mut buf) {
                                Ok(0) => break,
                                Ok(n) => live.stream(&buf[..n]),
                                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                                Err(_) => break,
                            }
                        }
                        break;
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
                }
            }
            let _ = tx.send(());
        });
        Ok(StatsSocket { path, stop, done })
    }

    /// The socket's path (the `{stats}` placeholder).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// After QEMU exited: waits (briefly) for the rest of the stream, removes the socket.
    pub fn close(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.done.recv_timeout(std::time::Duration::from_secs(2));
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REC: &str = "FXSTATS v=1 seq=1 t_ns=2000000000 final=0 cores=2 steer_dropped=0 \
                       core=0 queue=0 rx=30 tx=20 drop.bad_checksum=1 core=1 rx=5 events=7\n";

    fn sink() -> (LiveStats, Arc<Mutex<Vec<u8>>>, std::path::PathBuf) {
        #[derive(Clone)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                lock(&self.0).extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let out = Arc::new(Mutex::new(Vec::new()));
        let json = std::env::temp_dir().join(format!(
            "ferrix-live-unit-{}-{:?}.json",
            std::process::id(),
            std::thread::current().id()
        ));
        let (l, _console) = LiveStats::new(Some(&json), true, Box::new(Buf(out.clone()))).unwrap();
        (l, out, json)
    }

    #[test]
    fn decodes_groups_by_core() {
        let d = Decoded::decode(REC.as_bytes()).unwrap();
        assert_eq!((d.seq, d.t_ns, d.is_final), (1, 2_000_000_000, false));
        assert_eq!(d.vm, [("steer_dropped".to_string(), 0)]);
        assert_eq!(d.cores.len(), 2);
        assert_eq!((d.get(0, "rx"), d.get(0, "drop.bad_checksum")), (30, 1));
        assert_eq!(
            (d.get(1, "events"), d.get(1, "tx"), d.get(7, "rx")),
            (7, 0, 0)
        );
    }

    #[test]
    fn json_and_table() {
        let d = Decoded::decode(REC.as_bytes()).unwrap();
        let j = json_line(&d, 5, 1.5, 2);
        assert_eq!(
            j,
            "{\"unix_ms\":5,\"host_ms\":1.500,\"seq\":1,\"t_ns\":2000000000,\"final\":false,\
             \"host_dropped\":2,\"vm\":{\"steer_dropped\":0},\"cores\":[{\"core\":0,\"queue\":0,\
             \"rx\":30,\"tx\":20,\"drop.bad_checksum\":1},{\"core\":1,\"rx\":5,\"events\":7}]}\n"
        );
        let prev = Decoded::decode(
            b"FXSTATS v=1 seq=0 t_ns=1000000000 final=0 cores=2 core=0 rx=10 core=1\n",
        )
        .unwrap();
        let t = table(&d, Some(&prev), 0);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with(TABLE_TITLE), "{t}");
        assert!(
            lines[1].contains("core") && lines[1].contains("steals"),
            "{t}"
        );
        let row0: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(
            row0,
            ["0", "30", "20", "0", "0", "0", "0", "0", "0", "20", "20"]
        );
        assert_eq!(lines.len(), 4);
    }

    #[test]
    fn hostile_stream_is_counted_not_fatal() {
        let (l, out, json) = sink();
        // However slow this machine, the second record comes "too soon" for a redraw.
        lock(&l.0).min_redraw = std::time::Duration::from_secs(3600);
        // Cut in the middle, garbage, an oversized line, non-UTF-8, then a good record.
        l.stream(&REC.as_bytes()[..10]);
        l.stream(&REC.as_bytes()[10..]);
        l.stream(b"garbage\n\xff\xfe\n");
        l.stream(&vec![b'x'; RECORD_MAX * 3]);
        l.stream(b"\n");
        l.record(b"FXSTATS v=1 seq=9 t_ns=1 final=0 cores=5 core=0\n");
        l.record(REC.as_bytes());
        let fin = REC.replace("final=0", "final=1");
        l.record(fin.as_bytes());
        l.stream(b"FXSTATS v=1 seq=2");
        let s = l.finish().unwrap();
        assert_eq!(
            s,
            Summary {
                records: 3,
                dropped: 5
            }
        );
        let lines = std::fs::read_to_string(&json).unwrap();
        let _ = std::fs::remove_file(&json);
        assert_eq!(lines.lines().count(), 3);
        assert!(lines.lines().nth(1).unwrap().contains("\"host_dropped\":4"));
        let drawn = String::from_utf8(lock(&out).clone()).unwrap();
        // The second record came too soon to be drawn; the final one replaced the first table
        // in place.
        assert_eq!(drawn.matches(TABLE_TITLE).count(), 2, "{drawn:?}");
        assert!(drawn.contains("(final)"), "{drawn:?}");
        assert!(drawn.contains("\x1b[4F\x1b[J"), "{drawn:?}");
    }
}
