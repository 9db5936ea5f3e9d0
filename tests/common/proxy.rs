//! A TCP proxy between the extension and PostgreSQL that can stall, as a pooler that hangs or a
//! NAT that drops a flow does: told to, it stops forwarding in both directions on every
//! connection (it holds what it has read and reads no more, so the sender's window closes),
//! until told to forward again. Connections made during a stall are accepted and held too.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which way bytes go through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    ToServer,
    ToClient,
}

#[derive(Default)]
struct State {
    stalled: AtomicBool,
    /// A stall that starts once this many bytes in total have gone this way.
    armed: Mutex<Option<(Direction, u64)>>,
    to_server: AtomicU64,
    to_client: AtomicU64,
    /// Some connection holds bytes because of the stall.
    holding: AtomicBool,
}

impl State {
    fn forwarded(&self, direction: Direction) -> &AtomicU64 {
        match direction {
            Direction::ToServer => &self.to_server,
            Direction::ToClient => &self.to_client,
        }
    }
}

pub struct Proxy {
    pub port: u16,
    state: Arc<State>,
}

impl Proxy {
    /// Listens on a free port of 127.0.0.1 and forwards each connection to `server_port`.
    pub fn start(server_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State::default());
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", server_port)) else {
                    continue;
                };
                for (from, to, direction) in [
                    (&client, &server, Direction::ToServer),
                    (&server, &client, Direction::ToClient),
                ] {
                    let (from, to) = (from.try_clone().unwrap(), to.try_clone().unwrap());
                    let state = shared.clone();
                    std::thread::spawn(move || pump(from, to, direction, &state));
                }
            }
        });
        Proxy { port, state }
    }

    /// Stalls every connection once `bytes` more have gone `direction` (the buffer that
    /// reaches the count is held, not forwarded).
    pub fn stall_after(&self, direction: Direction, bytes: u64) {
        let so_far = self.state.forwarded(direction).load(Ordering::SeqCst);
        *self.state.armed.lock().unwrap() = Some((direction, so_far + bytes));
    }

    /// Waits until a connection holds bytes because of the stall; fails after `limit`.
    pub fn wait_until_holding(&self, limit: Duration) {
        let started = Instant::now();
        while !self.state.holding.load(Ordering::SeqCst) {
            assert!(started.elapsed() < limit, "the proxy never stalled");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Forwards again, what was held first.
    pub fn resume(&self) {
        *self.state.armed.lock().unwrap() = None;
        self.state.stalled.store(false, Ordering::SeqCst);
        self.state.holding.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    /// Lets held connections end, so the server sees their clients gone.
    fn drop(&mut self) {
        self.resume();
    }
}

/// Forwards `from` to `to` until either ends, holding while the proxy is stalled.
fn pump(mut from: TcpStream, mut to: TcpStream, direction: Direction, state: &State) {
    let mut buf = [0u8; 16384];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 {
            break;
        }
        let total = state
            .forwarded(direction)
            .fetch_add(n as u64, Ordering::SeqCst)
            + n as u64;
        {
            let mut armed = state.armed.lock().unwrap();
            if matches!(*armed, Some((way, at)) if way == direction && total >= at) {
                *armed = None;
                state.stalled.store(true, Ordering::SeqCst);
            }
        }
        while state.stalled.load(Ordering::SeqCst) {
            state.holding.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(10));
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
}
