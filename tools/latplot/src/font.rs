//! The plots' font, found at run time: `FERRIX_FONT` (or the older `LANCET_FONT` /
//! `QSIM_FONT`), then the usual DejaVu / Liberation paths, then any `.ttf` under
//! /usr/share/fonts. Without one the plots are drawn without text rather than failing.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::style::FontStyle;

/// The family name the font is registered under; use it in text styles.
pub const FAMILY: &str = "ferrix-sans";

/// Environment variables naming a `.ttf` file, in the order they are looked at.
pub const FONT_VARS: [&str; 3] = ["FERRIX_FONT", "LANCET_FONT", "QSIM_FONT"];

const KNOWN: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

/// Registers the font once per process; true if text can be drawn.
pub fn available() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(|| {
        let Some(bytes) = find().and_then(|p| std::fs::read(p).ok()) else {
            return false;
        };
        // plotters wants 'static font bytes: one font per process, leaked on purpose.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font(FAMILY, FontStyle::Normal, bytes).is_ok()
    })
}

/// The font file to use, if any. A variable that is set but names no file means "no font".
pub fn find() -> Option<PathBuf> {
    if let Some(p) = FONT_VARS.iter().find_map(std::env::var_os) {
        return Some(PathBuf::from(p)).filter(|p| p.is_file());
    }
    KNOWN
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .or_else(|| any_ttf(Path::new("/usr/share/fonts"), 4))
}

/// The first `.ttf` under `dir` (by name, files before subdirectories), `depth` levels down.
fn any_ttf(dir: &Path, depth: usize) -> Option<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    if let Some(p) = entries
        .iter()
        .find(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("ttf")))
    {
        return Some(p.clone());
    }
    if depth == 0 {
        return None;
    }
    entries
        .iter()
        .filter(|p| p.is_dir())
        .find_map(|p| any_ttf(p, depth - 1))
}

#[cfg(test)]
mod tests {
    use super::any_ttf;

    #[test]
    fn finds_a_ttf_below_the_top_level() {
        let dir = std::env::temp_dir().join(format!("latplot-font-{}", std::process::id()));
        let deep = dir.join("a/b");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(dir.join("readme.txt"), "x").unwrap();
        std::fs::write(deep.join("Sans.TTF"), "x").unwrap();
        assert_eq!(any_ttf(&dir, 4), Some(deep.join("Sans.TTF")));
        assert_eq!(any_ttf(&dir, 1), None, "two levels down");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
