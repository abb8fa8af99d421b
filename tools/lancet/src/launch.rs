//! Where the coordinator's agents come from: local child processes (`lancet agent --listen
//! 127.0.0.1:0 --once`, address read from their first output line) or remote addresses listed
//! in a file, each with the kind the coordinator will configure it as.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::agent::options::AgentKind;
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
    #[error("agents file {path}: {why}")]
    Syntax { path: PathBuf, why: String },
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

/// Start one agent per entry of `kinds` from the executable `exe` and connect to them.
pub fn spawn_local(
    exe: &Path,
    kinds: &[AgentKind],
    timeout: Duration,
) -> Result<(Vec<AgentClient>, LocalAgents), LaunchError> {
    let mut local = LocalAgents::default();
    let mut clients = Vec::new();
    let spawn_err = |why: String| LaunchError::Spawn {
        exe: exe.to_owned(),
        why,
    };
    for kind in kinds {
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
        clients.push(AgentClient::connect(addr, timeout)?.with_kind(*kind));
    }
    Ok((clients, local))
}

/// Parse an agents file: one `host:port [kind]` per line (kind: symmetric, throughput or
/// latency; default symmetric), blank lines and `#` comments ignored.
pub fn parse_agents_file(text: &str) -> Result<Vec<(String, AgentKind)>, String> {
    let mut out = Vec::new();
    for (no, line) in text.lines().enumerate() {
        let mut words = line.split('#').next().unwrap_or("").split_whitespace();
        let Some(addr) = words.next() else { continue };
        let kind = match words.next() {
            Some(k) => k.parse().map_err(|e| format!("line {}: {e}", no + 1))?,
            None => AgentKind::Symmetric,
        };
        if let Some(extra) = words.next() {
            return Err(format!("line {}: unexpected '{extra}'", no + 1));
        }
        out.push((addr.to_owned(), kind));
    }
    Ok(out)
}

/// Connect to the remote agents listed in `path`.
pub fn connect_file(path: &Path, timeout: Duration) -> Result<Vec<AgentClient>, LaunchError> {
    let text = std::fs::read_to_string(path).map_err(|source| LaunchError::File {
        path: path.to_owned(),
        source,
    })?;
    let agents = parse_agents_file(&text).map_err(|why| LaunchError::Syntax {
        path: path.to_owned(),
        why,
    })?;
    if agents.is_empty() {
        return Err(LaunchError::Empty(path.to_owned()));
    }
    Ok(agents
        .iter()
        .map(|(a, k)| AgentClient::connect(a, timeout).map(|c| c.with_kind(*k)))
        .collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_file() {
        let a = parse_agents_file(
            "# agents\n10.0.0.1:5001\n\n host:5002 # second\nhost:5003 latency\nh:4 throughput\n",
        )
        .unwrap();
        let s = |a: &str, k| (a.to_owned(), k);
        assert_eq!(
            a,
            [
                s("10.0.0.1:5001", AgentKind::Symmetric),
                s("host:5002", AgentKind::Symmetric),
                s("host:5003", AgentKind::Latency),
                s("h:4", AgentKind::Throughput),
            ]
        );
        assert!(
            parse_agents_file("h:1 fast\n")
                .unwrap_err()
                .contains("line 1")
        );
        assert!(parse_agents_file("h:1 latency extra\n").is_err());
    }
}
