//! Parsing of memory sizes given on the command line: `64M`, `1G`, `512K`, `1048576`.
//!
//! Suffixes are binary (K = 1024) and case-insensitive; an optional trailing `B`/`iB` is
//! accepted (`64MiB`, `64MB`). A bare number is bytes.

/// Parses a size into bytes. Returns a one-line message on error.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits_end);
    if num.is_empty() {
        return Err(format!(
            "invalid size '{s}': expected a number with an optional K, M or G suffix"
        ));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid size '{s}': number too large"))?;
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(format!(
                "invalid size '{s}': unknown unit '{unit}' (use K, M or G)"
            ));
        }
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("invalid size '{s}': too large"))
}

/// Formats a byte count the way a user would type it (`128M`, `1G`, `1536K`, `100`).
pub fn format_size(bytes: u64) -> String {
    for (shift, unit) in [(30, "G"), (20, "M"), (10, "K")] {
        if bytes != 0 && bytes.is_multiple_of(1u64 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_sizes() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("2gb"), Ok(2 << 30));
        assert_eq!(parse_size(" 3G "), Ok(3 << 30));
    }

    #[test]
    fn bad_sizes() {
        for s in [
            "",
            "M",
            "-1M",
            "1.5G",
            "12X",
            "1 G",
            "99999999999999999999",
            "16777216T",
        ] {
            assert!(parse_size(s).is_err(), "{s:?} should not parse");
        }
    }

    #[test]
    fn formats_round_trip() {
        for b in [100u64, 512 << 10, 128 << 20, 1 << 30, 1536 << 10] {
            assert_eq!(parse_size(&format_size(b)), Ok(b));
        }
        assert_eq!(format_size(128 << 20), "128M");
    }
}
