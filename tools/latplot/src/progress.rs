//! Progress of long runs: an indicatif bar on stderr only when stderr is a terminal and `CI`
//! is unset (a CI log gets the plain progress lines instead), and a writer that prints those
//! lines above a visible bar instead of through it.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressStyle};

/// Whether bars are shown: stderr is a terminal and the `CI` variable is not set.
pub fn enabled() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

/// A bar of `len` steps drawn with the indicatif `template` (e.g.
/// `"{bar:30} {pos}/{len} loads {elapsed} {msg}"`), hidden unless [`enabled`].
pub fn bar(len: u64, template: &str) -> ProgressBar {
    if !enabled() {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(len);
    if let Ok(s) = ProgressStyle::with_template(template) {
        b.set_style(s);
    }
    b
}

/// Writes to `inner`, with `bar` (when visible) lifted out of the way while it does.
pub struct AboveBar<'a> {
    pub bar: &'a ProgressBar,
    pub inner: &'a mut dyn Write,
}

impl Write for AboveBar<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let inner = &mut self.inner;
        self.bar.suspend(|| inner.write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hidden_bar_passes_lines_through() {
        let bar = ProgressBar::hidden();
        let mut out = Vec::new();
        let mut w = AboveBar {
            bar: &bar,
            inner: &mut out,
        };
        writeln!(w, "bench: step 1").unwrap();
        assert_eq!(out, b"bench: step 1\n");
    }
}
