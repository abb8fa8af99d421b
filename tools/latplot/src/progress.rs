//! Progress of long runs: an indicatif bar on stderr only when stderr is a terminal and `CI`
//! is unset, and [`Steps`], which prints a run's progress lines as before (above the bar when
//! one shows, so a CI log gets the same lines).

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

/// A run of `len` steps: each [`Steps::step`] line is printed (above the bar when one shows)
/// and becomes the bar's message; the bar (when [`enabled`]) advances as steps end.
pub struct Steps<'a> {
    bar: ProgressBar,
    out: &'a mut dyn Write,
    open: bool,
}

impl<'a> Steps<'a> {
    /// `len` steps, lines to `out`.
    pub fn new(len: u64, out: &'a mut dyn Write) -> Self {
        Steps {
            bar: bar(len, "{bar:30} {pos}/{len} {elapsed} {msg}"),
            out,
            open: false,
        }
    }

    /// Ends the current step (if any) and starts one, announced by `line`.
    pub fn step(&mut self, line: &str) {
        self.end();
        let _ = writeln!(self, "{line}");
        self.bar.set_message(line.to_owned());
        self.open = true;
    }

    /// Ends the current step (if any), and counts `n` more as done without running them
    /// (a sweep that stopped early).
    pub fn skip(&mut self, n: u64) {
        self.end();
        self.bar.inc(n);
    }

    /// Steps done so far.
    pub fn done(&self) -> u64 {
        self.bar.position()
    }

    fn end(&mut self) {
        if self.open {
            self.bar.inc(1);
            self.open = false;
        }
    }
}

impl Write for Steps<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let out = &mut self.out;
        self.bar.suspend(|| out.write(buf))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

impl Drop for Steps<'_> {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_print_their_lines_and_count() {
        let mut out = Vec::new();
        {
            let mut s = Steps::new(5, &mut out);
            s.step("bench: a");
            assert_eq!(s.done(), 0, "a step counts once it ends");
            s.step("bench: b");
            writeln!(s, "bench: b: detail").unwrap();
            s.skip(2);
            assert_eq!(s.done(), 4);
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "bench: a\nbench: b\nbench: b: detail\n"
        );
    }
}
