//! Running QEMU: spawn it, stream the serial console, enforce the timeout, map its exit status.
//!
//! QEMU's stdout is the guest's serial console (`-serial stdio`): it is copied to the caller's
//! writer as it arrives. stderr is collected and shown only when QEMU fails. stdin is null, so
//! QEMU never touches the terminal.
//!
//! Exit status (`-device isa-debug-exit,iobase=0xf4`): the guest writing V to port 0xf4 ends
//! QEMU with status `(V << 1) | 1`, so an odd status carries guest code `status >> 1`. Status 0
//! means QEMU exited without the device, which with `-no-reboot` is a guest reset (triple
//! fault). Any other status, or a signal, is a QEMU failure. One ambiguity: QEMU's own startup
//! errors also exit with 1, which reads as guest code 0; we tell them apart by stderr, where
//! QEMU then prints an error line (lines that are only warnings do not count).

use crate::error::CliError;
use crate::options::RunResult;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The QEMU binary used when `FERRIX_QEMU` is not set.
pub const DEFAULT_QEMU: &str = "qemu-system-x86_64";

/// How long to wait for the console to drain after QEMU exited (a grandchild holding the pipe
/// open must not hang us).
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// The QEMU binary: `$FERRIX_QEMU` or [`DEFAULT_QEMU`].
pub fn qemu_binary() -> String {
    std::env::var("FERRIX_QEMU")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_QEMU.to_string())
}

/// Whether `bin` names an executable file (a path, or a name found on `$PATH`).
pub(crate) fn executable_exists(bin: &str) -> bool {
    let is_exec = |p: &std::path::Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if bin.contains('/') {
        return is_exec(std::path::Path::new(bin));
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| is_exec(&d.join(bin))))
}

/// The command that starts QEMU. QEMU must not outlive `ferrix` (a `ferrix run` killed by a
/// signal, by `timeout` or by a test would otherwise leave the VM running with no time limit),
/// so when util-linux's `setpriv` is there QEMU is started through it with
/// `--pdeathsig KILL`: the kernel kills QEMU when the thread that started it ends (that thread
/// waits for QEMU, so only its death triggers it).
fn qemu_command(bin: &str, argv: &[String]) -> Command {
    tied_command(bin, argv)
}

/// `bin argv...`, started through `setpriv --pdeathsig KILL` when it is there (see
/// [`qemu_command`]): a child that must not outlive the thread that starts it (QEMU, the Linux
/// servers of `bench kv`).
pub(crate) fn tied_command(bin: &str, argv: &[String]) -> Command {
    if executable_exists(bin) && executable_exists("setpriv") {
        let mut c = Command::new("setpriv");
        c.args(["--pdeathsig", "KILL", "--", bin]).args(argv);
        c
    } else {
        let mut c = Command::new(bin);
        c.args(argv);
        c
    }
}

/// Runs `bin argv...` as QEMU. See the module doc for the exit status mapping.
pub fn run_qemu(
    bin: &str,
    argv: &[String],
    timeout: Option<Duration>,
    console: Box<dyn Write + Send>,
) -> Result<RunResult, CliError> {
    let mut child = qemu_command(bin, argv)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                CliError::QemuNotFound {
                    bin: bin.to_string(),
                }
            } else {
                CliError::QemuSpawn {
                    bin: bin.to_string(),
                    source,
                }
            }
        })?;
    let started = Instant::now();

    let (out_tx, out_rx) = mpsc::channel::<()>();
    let stdout = child.stdout.take();
    thread::spawn(move || {
        if let Some(out) = stdout {
            pump(out, console);
        }
        let _ = out_tx.send(());
    });
    let (err_tx, err_rx) = mpsc::channel::<Vec<u8>>();
    let stderr = child.stderr.take();
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut err) = stderr {
            let _ = err.read_to_end(&mut buf);
        }
        let _ = err_tx.send(buf);
    });

    let deadline = timeout.map(|t| started + t);
    let status = match wait_until(&mut child, &out_rx, deadline)? {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let _ = out_rx.recv_timeout(DRAIN_GRACE);
            return Ok(RunResult {
                exit_code: ferrix_abi::exit::HOST_TIMEOUT as i32,
                timed_out: true,
            });
        }
    };
    // QEMU is gone: let the console drain and collect stderr, but never hang on them.
    let _ = out_rx.recv_timeout(DRAIN_GRACE);
    let stderr = err_rx.recv_timeout(DRAIN_GRACE).unwrap_or_default();
    let exit_code = map_status(status, &String::from_utf8_lossy(&stderr))?;
    Ok(RunResult {
        exit_code,
        timed_out: false,
    })
}

/// Waits for the child to exit; `None` when the deadline passed first. Wakes up as soon as the
/// console reaches EOF (QEMU exiting closes it) and otherwise polls every 50 ms, in case
/// something else keeps the console pipe open.
fn wait_until(
    child: &mut Child,
    console_done: &mpsc::Receiver<()>,
    deadline: Option<Instant>,
) -> Result<Option<ExitStatus>, CliError> {
    const POLL: Duration = Duration::from_millis(50);
    let mut console_open = true;
    loop {
        let io_err = |source| CliError::Io {
            what: "waiting for QEMU".to_string(),
            source,
        };
        if let Some(status) = child.try_wait().map_err(io_err)? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        let slice = match deadline {
            Some(d) if d <= now => return Ok(None),
            Some(d) => (d - now).min(POLL),
            None => POLL,
        };
        if console_open {
            match console_done.recv_timeout(slice) {
                Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    console_open = false;
                    // EOF: QEMU is exiting; a short poll catches the status.
                    thread::sleep(Duration::from_millis(1));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        } else {
            thread::sleep(slice.min(Duration::from_millis(5)));
        }
    }
}

/// Copies QEMU's stdout to the console as it arrives. Keeps draining after a write error so
/// QEMU never blocks on a full pipe.
fn pump(mut from: impl Read, mut to: Box<dyn Write + Send>) {
    let mut buf = [0u8; 4096];
    let mut writable = true;
    loop {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if writable {
                    writable = to.write_all(&buf[..n]).and_then(|()| to.flush()).is_ok();
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let _ = to.flush();
}

/// Maps QEMU's exit status (and its stderr) to the guest's exit code or an error.
pub fn map_status(status: ExitStatus, stderr: &str) -> Result<i32, CliError> {
    use std::os::unix::process::ExitStatusExt;
    map_status_parts(status.code(), status.signal(), stderr)
}

/// [`map_status`] on the parts of an exit status: `code` if QEMU exited, `signal` if killed.
pub fn map_status_parts(
    code: Option<i32>,
    signal: Option<i32>,
    stderr: &str,
) -> Result<i32, CliError> {
    let error_line = qemu_error_line(stderr);
    match code {
        Some(1) if error_line.is_some() => Err(CliError::QemuFailed {
            status: "exit status 1".to_string(),
            detail: error_line.unwrap_or_default(),
        }),
        Some(c) if c & 1 == 1 => Ok(c >> 1),
        Some(0) => Err(CliError::GuestReset {
            detail: error_line.unwrap_or_default(),
        }),
        Some(c) => Err(CliError::QemuFailed {
            status: format!("exit status {c}"),
            detail: error_line.unwrap_or_else(|| "no message on stderr".to_string()),
        }),
        None => Err(CliError::QemuFailed {
            status: match signal {
                Some(s) => format!("killed by signal {s}"),
                None => "no exit status".to_string(),
            },
            detail: error_line.unwrap_or_else(|| "no message on stderr".to_string()),
        }),
    }
}

/// The first stderr line that is an error rather than a warning. libbpf's messages are not
/// errors: with `rss=on` QEMU tries to load its eBPF steering program first and, when the
/// host's libbpf refuses it, hashes in software (what ferrix wants anyway).
fn qemu_error_line(stderr: &str) -> Option<String> {
    stderr
        .lines()
        .map(str::trim)
        .find(|l| {
            !l.is_empty()
                && !l.to_ascii_lowercase().contains("warning")
                && !l.starts_with("libbpf:")
        })
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    #[test]
    fn libbpf_chatter_is_not_an_error() {
        let e = "libbpf: elf: legacy map definitions in 'maps' section are not supported by libbpf v1.0+\n";
        assert_eq!(super::map_status_parts(Some(1), None, e).unwrap(), 0);
        assert!(super::map_status_parts(Some(1), None, "qemu: could not open tap").is_err());
    }

    use super::*;

    #[test]
    fn odd_status_is_the_guest_code() {
        assert_eq!(map_status_parts(Some(1), None, "").unwrap(), 0);
        assert_eq!(map_status_parts(Some(7), None, "").unwrap(), 3);
        assert_eq!(
            map_status_parts(Some((101 << 1) | 1), None, "").unwrap(),
            101
        );
        // Warnings alone do not turn a clean exit into a failure.
        let warn = "qemu-system-x86_64: warning: TCG doesn't support requested feature\n";
        assert_eq!(map_status_parts(Some(1), None, warn).unwrap(), 0);
    }

    #[test]
    fn status_zero_is_a_reset() {
        let e = map_status_parts(Some(0), None, "").unwrap_err();
        assert!(matches!(e, CliError::GuestReset { .. }));
        assert_eq!(e.exit_code(), 125);
        assert!(e.to_string().contains("triple fault"));
    }

    #[test]
    fn qemu_errors_are_failures() {
        let e = map_status_parts(
            Some(1),
            None,
            "qemu: could not open kernel file '/x': No such file or directory\n",
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), 125);
        assert!(e.to_string().contains("could not open kernel file"), "{e}");
        let e = map_status_parts(Some(2), None, "").unwrap_err();
        assert!(e.to_string().contains("exit status 2"), "{e}");
        let e = map_status_parts(None, Some(9), "").unwrap_err();
        assert!(e.to_string().contains("signal 9"), "{e}");
    }
}
