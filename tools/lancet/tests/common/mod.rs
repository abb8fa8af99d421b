//! Real servers (Debian's `memcached`, `redis-server`) started by a test on a free loopback
//! port and killed when the guard drops (also when the test panics).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process this test started; killed and reaped on drop.
pub struct Server {
    child: Child,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Start `memcached` (one worker thread) or `redis-server` on a free loopback port and wait
/// until it accepts connections. `None` (with a printed SKIP line) when the program is not
/// installed, except under CI (`CI=true`), where a missing server fails the test.
pub fn start(cmd: &str) -> Option<Server> {
    let port = free_port();
    let p = port.to_string();
    let args: Vec<&str> = match cmd {
        "memcached" => vec![
            "-l",
            "127.0.0.1",
            "-p",
            &p,
            "-U",
            "0",
            "-t",
            "1",
            "-u",
            "root",
        ],
        "redis-server" => vec![
            "--bind",
            "127.0.0.1",
            "--port",
            &p,
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        _ => panic!("unknown server {cmd}"),
    };
    let child = match Command::new(cmd)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(!ci, "`{cmd}` is not installed ({e}); .ci/run installs it");
            eprintln!("SKIP: `{cmd}` is not installed ({e})");
            return None;
        }
    };
    let server = Server { child, port };
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{cmd} did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(server)
}
