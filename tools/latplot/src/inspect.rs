//! Reading this crate's outputs back, for the tests of the tools that write them: a PNG's
//! size and colours, and the rows of a [`dist_csv`](crate::dist_csv) table.

use std::collections::HashSet;
use std::path::Path;

use plotters::style::RGBColor;

/// What a PNG holds.
#[derive(Debug, Clone)]
pub struct PngSummary {
    pub width: u32,
    pub height: u32,
    /// Distinct RGB colours.
    pub colours: HashSet<(u8, u8, u8)>,
    /// Pixels that are not white.
    pub non_white: usize,
}

impl PngSummary {
    /// Whether some pixel has exactly colour `c` (e.g. a series colour, [`crate::color`]).
    pub fn has(&self, c: RGBColor) -> bool {
        self.colours.contains(&(c.0, c.1, c.2))
    }

    /// The fraction of pixels that are not white.
    pub fn ink(&self) -> f64 {
        self.non_white as f64 / (f64::from(self.width) * f64::from(self.height)).max(1.0)
    }
}

/// Decodes the PNG at `path` (8-bit RGB or RGBA, as plotters writes them).
pub fn png(path: &Path) -> Result<PngSummary, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let step = match (info.color_type, info.bit_depth) {
        (png::ColorType::Rgb, png::BitDepth::Eight) => 3,
        (png::ColorType::Rgba, png::BitDepth::Eight) => 4,
        other => {
            return Err(format!(
                "{}: unexpected pixel format {other:?}",
                path.display()
            ));
        }
    };
    let mut colours = HashSet::new();
    let mut non_white = 0;
    for px in buf[..info.buffer_size()].chunks_exact(step) {
        let c = (px[0], px[1], px[2]);
        non_white += usize::from(c != (255, 255, 255));
        colours.insert(c);
    }
    Ok(PngSummary {
        width: info.width,
        height: info.height,
        colours,
        non_white,
    })
}

/// One row of a distribution CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct DistRow {
    pub series: String,
    pub samples: usize,
    pub percentile: f64,
    pub latency_us: f64,
}

/// Parses [`dist_csv`](crate::dist_csv)'s text (series labels without quotes).
pub fn dist_rows(text: &str) -> Result<Vec<DistRow>, String> {
    let mut lines = text.lines();
    match lines.next() {
        Some("series,samples,percentile,latency_us") => {}
        other => return Err(format!("unexpected header {other:?}")),
    }
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let bad = || format!("bad row {l:?}");
            if f.len() != 4 {
                return Err(bad());
            }
            Ok(DistRow {
                series: f[0].to_owned(),
                samples: f[1].parse().map_err(|_| bad())?,
                percentile: f[2].parse().map_err(|_| bad())?,
                latency_us: f[3].parse().map_err(|_| bad())?,
            })
        })
        .collect()
}

/// Checks that `rows` hold every percentile of [`CSV_PERCENTILES`](crate::dist::CSV_PERCENTILES)
/// for `series`, in order, with latencies that never decrease; returns the series' sample count.
pub fn check_series(rows: &[DistRow], series: &str) -> Result<usize, String> {
    let mine: Vec<&DistRow> = rows.iter().filter(|r| r.series == series).collect();
    let pcts: Vec<f64> = mine.iter().map(|r| r.percentile).collect();
    if pcts != crate::dist::CSV_PERCENTILES {
        return Err(format!("{series}: percentiles {pcts:?}"));
    }
    if mine.windows(2).any(|w| w[1].latency_us < w[0].latency_us) {
        return Err(format!("{series}: latencies decrease: {mine:?}"));
    }
    let n = mine[0].samples;
    if mine.iter().any(|r| r.samples != n) {
        return Err(format!("{series}: sample counts differ"));
    }
    Ok(n)
}
