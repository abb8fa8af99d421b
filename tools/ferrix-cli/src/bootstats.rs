//! Parsing the boot statistics a guest prints when its command line has `ferrix.bootstats`:
//!
//! ```text
//! ferrix-bootstats: start_tsc=<u64> entry_tsc=<u64> tsc_hz=<u64>
//! ferrix-bootstats: exit_tsc=<u64>
//! ```
//!
//! `start_tsc` is read at the PVH entry, `entry_tsc` just before the app's entry on core 0,
//! `exit_tsc` just before the exit. Lines may be interleaved with other console output and
//! may end in `\r\n`; the last value of each key wins. Pure code, no I/O.

/// The kernel argument that makes the guest print the lines.
pub const BOOTSTATS_ARG: &str = "ferrix.bootstats";

/// The prefix of every bootstats line.
pub const PREFIX: &str = "ferrix-bootstats:";

/// TSC readings reported by one boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BootStats {
    /// TSC at the PVH entry point.
    pub start_tsc: u64,
    /// TSC just before the app's entry on core 0.
    pub entry_tsc: u64,
    /// The guest's idea of the TSC frequency.
    pub tsc_hz: u64,
    /// TSC just before exit, if the guest got that far.
    pub exit_tsc: Option<u64>,
}

impl BootStats {
    /// TSC ticks from the PVH entry to the app entry.
    pub fn to_entry(&self) -> u64 {
        self.entry_tsc.saturating_sub(self.start_tsc)
    }

    /// TSC ticks from the PVH entry to the exit.
    pub fn to_exit(&self) -> Option<u64> {
        self.exit_tsc.map(|e| e.saturating_sub(self.start_tsc))
    }
}

/// Parses the bootstats out of a console transcript. `None` unless `start_tsc`, `entry_tsc`
/// and `tsc_hz` all appear.
pub fn parse(console: &str) -> Option<BootStats> {
    let (mut start, mut entry, mut hz, mut exit) = (None, None, None, None);
    for line in console.lines() {
        // The prefix may follow other text on the same line (e.g. an unterminated print).
        let Some(pos) = line.find(PREFIX) else {
            continue;
        };
        for field in line[pos + PREFIX.len()..].split_whitespace() {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            let Ok(v) = value.trim().parse::<u64>() else {
                continue;
            };
            match key {
                "start_tsc" => start = Some(v),
                "entry_tsc" => entry = Some(v),
                "tsc_hz" => hz = Some(v),
                "exit_tsc" => exit = Some(v),
                _ => {}
            }
        }
    }
    Some(BootStats {
        start_tsc: start?,
        entry_tsc: entry?,
        tsc_hz: hz?,
        exit_tsc: exit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_lines_among_other_output() {
        let out = "ferrix 0.1 booting\r\n\
                   ferrix-bootstats: start_tsc=1000 entry_tsc=251000 tsc_hz=2000000000\r\n\
                   hello, world\n\
                   ferrix-bootstats: exit_tsc=300000\n";
        let s = parse(out).unwrap();
        assert_eq!(
            s,
            BootStats {
                start_tsc: 1000,
                entry_tsc: 251000,
                tsc_hz: 2_000_000_000,
                exit_tsc: Some(300000)
            }
        );
        assert_eq!(s.to_entry(), 250000);
        assert_eq!(s.to_exit(), Some(299000));
    }

    #[test]
    fn exit_line_is_optional() {
        let s = parse("ferrix-bootstats: start_tsc=5 entry_tsc=9 tsc_hz=1\n").unwrap();
        assert_eq!(s.exit_tsc, None);
        assert_eq!(s.to_exit(), None);
    }

    #[test]
    fn missing_or_garbled_fields_give_none() {
        assert_eq!(parse(""), None);
        assert_eq!(parse("hello\n"), None);
        assert_eq!(parse("ferrix-bootstats: start_tsc=1 tsc_hz=2\n"), None);
        assert_eq!(
            parse("ferrix-bootstats: start_tsc=x entry_tsc=2 tsc_hz=3\n"),
            None
        );
        assert_eq!(parse("ferrix-bootstats: exit_tsc=7\n"), None);
    }

    #[test]
    fn prefix_after_other_text_and_unknown_keys() {
        let out =
            "panic-free noise ferrix-bootstats: start_tsc=1 foo=bar entry_tsc=2 tsc_hz=3 junk\n";
        let s = parse(out).unwrap();
        assert_eq!((s.start_tsc, s.entry_tsc, s.tsc_hz), (1, 2, 3));
    }

    #[test]
    fn entry_before_start_saturates() {
        let s = parse("ferrix-bootstats: start_tsc=10 entry_tsc=2 tsc_hz=3\n").unwrap();
        assert_eq!(s.to_entry(), 0);
    }
}
