//! `ferrix run --profile-hz N`: the guest samples its instruction pointers (kernel option
//! `ferrix.profile=N`) and prints the hottest addresses at exit as `ferrix-profile:` lines; this
//! module maps them to function names with the image's ELF symbol table and prints a table of
//! functions by share of samples. Under the `microvm-icount` profile the samples follow guest
//! instructions.

use object::{Object, ObjectSymbol, SymbolKind};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Function symbols of an image: (start, size, name), sorted by start.
pub struct Symbols(Vec<(u64, u64, String)>);

impl Symbols {
    /// Reads the function symbols of the ELF at `path`.
    pub fn from_elf(path: &Path) -> Result<Symbols, String> {
        let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file = object::File::parse(&*data).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut v: Vec<(u64, u64, String)> = file
            .symbols()
            .filter(|s| s.kind() == SymbolKind::Text && s.address() != 0)
            .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?.to_string())))
            .collect();
        v.sort();
        Ok(Symbols(v))
    }

    /// The function containing `addr`, demangled.
    pub fn name_of(&self, addr: u64) -> Option<String> {
        let i = self
            .0
            .partition_point(|(start, _, _)| *start <= addr)
            .checked_sub(1)?;
        let (start, size, name) = &self.0[i];
        (addr < start + (*size).max(1)).then(|| short_name(name))
    }
}

/// The demangled name without the hash (`ferrix::time::imp::now_ns`).
fn short_name(name: &str) -> String {
    format!("{:#}", rustc_demangle::demangle(name))
}

/// A console writer that passes everything through and keeps the `ferrix-profile:` lines.
#[derive(Clone)]
pub struct Tee {
    inner: Arc<Mutex<Box<dyn Write + Send>>>,
    lines: Arc<Mutex<Vec<u8>>>,
}

impl Tee {
    pub fn new(inner: Box<dyn Write + Send>) -> Tee {
        Tee {
            inner: Arc::new(Mutex::new(inner)),
            lines: Arc::default(),
        }
    }

    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.lines.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).flush()
    }
}

/// Samples per function from the console's `ferrix-profile:` lines: (total samples, rows of
/// (function, samples) by decreasing count).
pub fn by_function(console: &str, syms: &Symbols) -> (u64, Vec<(String, u64)>) {
    let mut total = 0;
    let mut per: BTreeMap<String, u64> = BTreeMap::new();
    for l in console.lines() {
        let Some(rest) = l.trim_end_matches('\r').strip_prefix("ferrix-profile: ") else {
            continue;
        };
        if let Some(t) = rest.strip_prefix("samples ") {
            total = t
                .split(' ')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            continue;
        }
        let mut it = rest.split(' ');
        let (Some(addr), Some(n)) = (it.next(), it.next()) else {
            continue;
        };
        let (Some(addr), Ok(n)) = (
            addr.strip_prefix("0x")
                .and_then(|a| u64::from_str_radix(a, 16).ok()),
            n.parse::<u64>(),
        ) else {
            continue;
        };
        let name = syms.name_of(addr).unwrap_or_else(|| format!("{addr:#x}"));
        *per.entry(name).or_default() += n;
    }
    let mut rows: Vec<(String, u64)> = per.into_iter().collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    (total, rows)
}

/// Formats the table.
pub fn table(total: u64, rows: &[(String, u64)]) -> String {
    let mut s =
        format!("profile: {total} samples (the guest reports its 4000 hottest addresses)\n");
    for (name, n) in rows.iter().take(40) {
        let pct = if total > 0 {
            100.0 * *n as f64 / total as f64
        } else {
            0.0
        };
        s.push_str(&format!("{pct:6.2} %  {n:>8}  {name}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_addresses_by_function() {
        let syms = Symbols(vec![
            (0x1000, 0x100, "a".into()),
            (0x1100, 0x80, "_ZN1b17h0123456789abcdefE".into()),
        ]);
        let console = "x\nferrix-profile: samples 10 dropped 0 hz 1000\nferrix-profile: 0x1010 4\n\
                       ferrix-profile: 0x1020 1\nferrix-profile: 0x1110 3\nferrix-profile: 0x9000 2\n";
        let (total, rows) = by_function(console, &syms);
        assert_eq!(total, 10);
        assert_eq!(rows[0], ("a".to_string(), 5));
        assert_eq!(rows[1], ("b".to_string(), 3)); // demangled, hash dropped
        assert_eq!(rows[2], ("0x9000".to_string(), 2));
        assert!(table(total, &rows).contains("50.00 %"));
    }
}
