//! A VM (a `ferrix run` child) whose console the test can read while it runs: a thread
//! collects stdout line by line. Killed when dropped, also when the test fails.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running VM and its console so far.
pub struct LiveVm {
    child: Child,
    console: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl LiveVm {
    /// Starts `cmd` with stdout piped (stderr inherited).
    pub fn spawn(mut cmd: Command) -> LiveVm {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        let out = child.stdout.take().expect("piped stdout");
        let console = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&console);
        let reader = std::thread::spawn(move || {
            let mut r = BufReader::new(out);
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 {
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&line);
                line.clear();
            }
        });
        LiveVm {
            child,
            console,
            reader: Some(reader),
        }
    }

    /// The console so far.
    pub fn console(&self) -> String {
        self.console
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until the console contains `needle` (true) or `limit` passed or the VM exited
    /// (false).
    pub fn wait(&mut self, needle: &str, limit: Duration) -> bool {
        let start = Instant::now();
        loop {
            if self.console().contains(needle) {
                return true;
            }
            if start.elapsed() > limit || !matches!(self.child.try_wait(), Ok(None)) {
                // One last look: the line may have come with the exit.
                std::thread::sleep(Duration::from_millis(50));
                return self.console().contains(needle);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the VM now; returns its console.
    pub fn kill(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.console()
    }

    /// Waits for the VM to exit by itself (at most `limit`, then it is killed); returns its
    /// exit status (None if killed) and the whole console.
    pub fn finish(mut self, limit: Duration) -> (Option<ExitStatus>, String) {
        let start = Instant::now();
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if start.elapsed() < limit => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break None;
                }
            }
        };
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        (status, self.console())
    }
}

impl Drop for LiveVm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where a VM of [`LiveVm::on_tap`] plugs in: a TAP device of the namespace and its MAC.
pub struct Tap<'a> {
    pub ns: &'a crate::netns::NetNs,
    pub dev: &'a str,
    pub mac: &'a str,
}

impl LiveVm {
    /// `ferrix run APP --cpus 1 --net tap:DEV --mac MAC --timeout 300 OPTS -- ARGS` inside
    /// the namespace (`ferrix` is the test's `ferrix` binary); waits (at most `limit`) for
    /// `ready` on the console and panics with the console if it never comes.
    pub fn on_tap(
        ferrix: &str,
        tap: Tap<'_>,
        app: &str,
        (opts, args): (&[&str], &[&str]),
        ready: &str,
        limit: Duration,
    ) -> LiveVm {
        let image = crate::image(app);
        let net = format!("tap:{}", tap.dev);
        let mut argv = vec![
            ferrix,
            "run",
            image.to_str().unwrap_or_default(),
            "--cpus",
            "1",
            "--net",
            &net,
            "--mac",
            tap.mac,
            "--timeout",
            "300",
        ];
        argv.extend_from_slice(opts);
        argv.push("--");
        argv.extend_from_slice(args);
        let mut vm = LiveVm::spawn(tap.ns.command(&argv));
        assert!(
            vm.wait(ready, limit),
            "{app} on {} never became ready:\n{}",
            tap.dev,
            vm.console()
        );
        vm
    }
}
