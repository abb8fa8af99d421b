//! Where the coordinator's agents come from: local child processes (`lancet agent --listen
//! 127.0.0.1:0 --once`, address read from their first output line) or remote addresses listed
//! in a file.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::control::{AgentClient, AgentError};

/// The line an agent prints first: `lancet agent listening on ADDR`.
pub const LISTEN_BANNER: &str = "lancet agent listening on ";

/// Why agents could not be started or reached.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot read agents file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("agents file {0} lists no agents")]
    Empty(PathBuf),
    #[error("cannot start local agent {exe}: {why}")]
    Spawn { exe: PathBuf, why: String },
    #[error(transparent)]
    Agent(#[from] AgentError),
}

/// Local agent processes; killed (if still running) and reaped on drop.
#[derive(Debug, Default)]
pub struct LocalAgents {
    children: Vec<Child>,
}

impl Drop for LocalAgents {
    fn drop(&mut self) {
        for c in &mut self.children {
            // Agents started with --once exit after `exit`; give them a moment first.
            for _ in 0..20 {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

/// Start `n` agents from the executable `exe` and connect to them.
pub fn spawn_local(
    exe: &Path,
    n: usize,
    timeout: Duration,
) -> Result<(Vec<AgentClient>, LocalAgents), LaunchError> {
    let mut local = LocalAgents::default();
    let mut clients = Vec::new();
    let spawn_err = |why: String| LaunchError::Spawn {
        exe: exe.to_owned(),
        why,
    };
    for _ in 0..n {
        let mut child = Command::new(exe)
            .args(["agent", "--listen", "127.0.0.1:0", "--once"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| spawn_err(e.to_string()))?;
        let out = child
            .stdout
            .take()
            .ok_or_else(|| spawn_err("no stdout".into()))?;
        local.children.push(child);
        let mut line = String::new();
        BufReader::new(out)
            .read_line(&mut line)
            .map_err(|e| spawn_err(e.to_string()))?;
        let addr = line
            .trim()
            .strip_prefix(LISTEN_BANNER)
            .ok_or_else(|| spawn_err(format!("unexpected first line '{}'", line.trim())))?;
        clients.push(AgentClient::connect(addr, timeout)?);
    }
    Ok((clients, local))
}

/// Parse an agents file: one `host:port` per line, blank lines and `#` comments ignored.
pub fn parse_agents_file(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Connect to the remote agents listed in `path`.
pub fn connect_file(path: &Path, timeout: Duration) -> Result<Vec<AgentClient>, LaunchError> {
    let text = std::fs::read_to_string(path).map_err(|source| LaunchError::File {
        path: path.to_owned(),
        source,
    })?;
    let addrs = parse_agents_file(&text);
    if addrs.is_empty() {
        return Err(LaunchError::Empty(path.to_owned()));
    }
    Ok(addrs
        .iter()
        .map(|a| AgentClient::connect(a, timeout))
        .collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn agents_file() {
        let a = super::parse_agents_file("# agents\n10.0.0.1:5001\n\n host:5002 # second\n");
        assert_eq!(a, ["10.0.0.1:5001", "host:5002"]);
    }
}
