//! A link to the test server that counts round trips: scripts/lib/delay_proxy.py (the
//! benchmark's delay proxy) between a job and PostgreSQL. Each connection through it, once
//! closed, reports how many times the client waited for an answer and went on.
//!
//! The link adds `RTT_MS` per round trip. Without it, a client sending two messages back to back
//! could find the server's answer to the first already in before it sends the second, on a busy
//! machine, and that would count as a wait it never made; with it, that needs a pause of a whole
//! RTT between the two sends. Nothing is timed: the delay only makes the count exact.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{tempdir, Pg};

/// Milliseconds the link adds per round trip (see the module's documentation).
const RTT_MS: u32 = 50;

pub struct CountingProxy {
    child: Child,
    pub port: u16,
    stats: PathBuf,
    _dir: tempdir::Dir,
}

impl CountingProxy {
    /// A proxy in front of the test server's port.
    pub fn start(pg: &Pg) -> CountingProxy {
        let dir = tempdir::Dir::new("proxy");
        let stats = dir.path().join("stats");
        std::fs::write(&stats, "").unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/lib/delay_proxy.py");
        let mut child = Command::new("/usr/bin/python3")
            .args([script, "--listen", "0", "--target"])
            .arg(format!("127.0.0.1:{}", pg.port))
            .arg("--rtt")
            .arg(RTT_MS.to_string())
            .arg("--stats")
            .arg(&stats)
            .stdout(Stdio::piped())
            .spawn()
            .expect("the delay proxy starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the proxy said {line:?}"));
        CountingProxy {
            child,
            port,
            stats,
            _dir: dir,
        }
    }

    /// The test server through the proxy, TLS verified as `Pg::verified_url`.
    pub fn url(&self, pg: &Pg) -> String {
        pg.url(
            "localhost",
            self.port,
            &format!("sslmode=verify-full&sslrootcert={}", pg.ca),
        )
    }

    /// Connections opened through the proxy so far.
    pub fn opened(&self) -> usize {
        std::fs::read_to_string(&self.stats)
            .unwrap()
            .lines()
            .filter(|l| *l == "open")
            .count()
    }

    /// Connections closed so far, once every connection opened has closed.
    pub fn closed(&self) -> usize {
        self.turns().len()
    }

    /// The round trips of each connection, in the order they closed, once every connection
    /// opened has closed (the proxy sees a close a moment after the job ends): waits up to 5 s.
    fn turns(&self) -> Vec<u64> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = std::fs::read_to_string(&self.stats).unwrap();
            let opened = text.lines().filter(|l| *l == "open").count();
            let turns: Vec<u64> = text
                .lines()
                .filter_map(|l| l.strip_prefix("turns "))
                .map(|n| n.parse().unwrap())
                .collect();
            if turns.len() == opened || Instant::now() > deadline {
                assert_eq!(
                    turns.len(),
                    opened,
                    "a connection through the proxy stays open"
                );
                return turns;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The round trips of the connections closed after the first `before`, summed.
    pub fn round_trips_since(&self, before: usize) -> u64 {
        let turns = self.turns();
        assert!(turns.len() > before, "no connection went through the proxy");
        turns[before..].iter().sum()
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
