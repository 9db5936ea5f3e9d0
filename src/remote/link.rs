//! The TCP socket under a session, as the kernel sees it: found, read for progress, and shut
//! down from another thread. The driver (rust-postgres) never hands out its socket, and a thread
//! blocked inside it can only be released by that socket breaking.
//!
//! The socket is found by a tag: each connect asks the driver for a `TCP_USER_TIMEOUT` no other
//! socket of the process has (a number of whole seconds plus a millisecond count of its own),
//! which the kernel reports back for exactly that socket; once found, the socket gets its real
//! value. Linux only: elsewhere no socket is found and a session has no link (its job then
//! relies on keepalive and the server's timeouts alone).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A `TCP_USER_TIMEOUT` for a connect that has `remaining` to go, unique in this process.
pub fn tag(remaining: Duration) -> Duration {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let unique = NEXT.fetch_add(1, Ordering::Relaxed) % 1000;
    Duration::from_millis(remaining.as_secs().max(1) * 1000 + unique)
}

/// Bytes the peer has sent us and bytes it has acknowledged: a link that moves neither makes
/// no progress, whatever the driver is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traffic {
    pub received: u64,
    pub acknowledged: u64,
}

/// An open TCP socket of this process, owned by a driver's session. Valid only while that
/// session lives: whoever holds a `Link` must drop it before the session closes its socket.
#[derive(Debug)]
pub struct Link {
    fd: i32,
}

#[cfg(target_os = "linux")]
mod imp {
    use std::ffi::c_void;
    use std::mem::size_of;
    use std::time::Duration;

    use super::{Link, Traffic};

    /// The syscalls a thread waiting inside the driver sits in (tokio's event loop).
    #[cfg(target_arch = "x86_64")]
    const WAITING: &[libc::c_long] = &[
        libc::SYS_epoll_wait,
        libc::SYS_epoll_pwait,
        libc::SYS_epoll_pwait2,
    ];
    #[cfg(not(target_arch = "x86_64"))]
    const WAITING: &[libc::c_long] = &[libc::SYS_epoll_pwait, libc::SYS_epoll_pwait2];

    fn tcp_option<T: Default>(fd: i32, option: libc::c_int) -> Option<T> {
        let mut value = T::default();
        let mut len = size_of::<T>() as libc::socklen_t;
        // SAFETY: `value` is a plain value of `len` bytes; a descriptor that is not a TCP
        // socket only makes the call fail.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::IPPROTO_TCP,
                option,
                (&mut value as *mut T).cast::<c_void>(),
                &mut len,
            )
        };
        (rc == 0).then_some(value)
    }

    pub fn find(tag: Duration) -> Option<Link> {
        let wanted = u32::try_from(tag.as_millis()).ok()?;
        let mut found = None;
        for entry in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
            let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if tcp_option::<u32>(fd, libc::TCP_USER_TIMEOUT) == Some(wanted) {
                if found.is_some() {
                    // Two sockets with the tag: neither can be trusted to be ours.
                    return None;
                }
                found = Some(Link { fd });
            }
        }
        found
    }

    impl Link {
        pub fn set_unacknowledged_limit(&self, limit: Duration) {
            let millis = u32::try_from(limit.as_millis()).unwrap_or(u32::MAX);
            // SAFETY: a u32 option value on a socket this session owns.
            unsafe {
                libc::setsockopt(
                    self.fd,
                    libc::IPPROTO_TCP,
                    libc::TCP_USER_TIMEOUT,
                    (&millis as *const u32).cast::<c_void>(),
                    size_of::<u32>() as libc::socklen_t,
                );
            }
        }

        pub fn traffic(&self) -> Option<Traffic> {
            let info: TcpInfo = tcp_option(self.fd, libc::TCP_INFO)?;
            Some(Traffic {
                received: info.0.tcpi_bytes_received,
                acknowledged: info.0.tcpi_bytes_acked,
            })
        }

        pub fn shut_down(&self) {
            // SAFETY: shuts the session's own socket; the descriptor stays open (the session
            // closes it), so no other file can take its number meanwhile.
            unsafe { libc::shutdown(self.fd, libc::SHUT_RDWR) };
        }
    }

    struct TcpInfo(libc::tcp_info);

    impl Default for TcpInfo {
        fn default() -> Self {
            // SAFETY: tcp_info is integers only.
            TcpInfo(unsafe { std::mem::zeroed() })
        }
    }

    pub fn current_thread() -> i32 {
        // SAFETY: no arguments; returns the caller's thread id.
        unsafe { libc::gettid() }
    }

    pub fn waits_on_network(thread: i32) -> bool {
        std::fs::read_to_string(format!("/proc/self/task/{thread}/syscall"))
            .ok()
            .and_then(|text| text.split_whitespace().next()?.parse().ok())
            .is_some_and(|call: libc::c_long| WAITING.contains(&call))
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::time::Duration;

    use super::{Link, Traffic};

    pub fn find(_tag: Duration) -> Option<Link> {
        None
    }

    impl Link {
        pub fn set_unacknowledged_limit(&self, _limit: Duration) {}

        pub fn traffic(&self) -> Option<Traffic> {
            None
        }

        pub fn shut_down(&self) {}
    }

    pub fn current_thread() -> i32 {
        0
    }

    pub fn waits_on_network(_thread: i32) -> bool {
        false
    }
}

/// The socket this process holds whose `TCP_USER_TIMEOUT` is `tag`, if exactly one does.
pub fn find(tag: Duration) -> Option<Link> {
    imp::find(tag)
}

/// The calling thread's id, as `waits_on_network` takes it.
pub fn current_thread() -> i32 {
    imp::current_thread()
}

/// Whether thread `thread` of this process is blocked in the driver's event loop: waiting for
/// the network, not working.
pub fn waits_on_network(thread: i32) -> bool {
    imp::waits_on_network(thread)
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    use super::*;

    #[test]
    fn a_tagged_socket_is_found_and_shows_its_traffic_and_shutdown() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        let tag = tag(Duration::from_secs(15));
        Link {
            fd: client.as_raw_fd(),
        }
        .set_unacknowledged_limit(tag);
        let link = find(tag).expect("the tagged socket");
        assert_eq!(link.fd, client.as_raw_fd());
        std::io::Write::write_all(&mut &server, b"hello").unwrap();
        let mut buf = [0; 5];
        (&client).read_exact(&mut buf).unwrap();
        assert_eq!(link.traffic().unwrap().received, 5);
        link.shut_down();
        assert_eq!(server.read(&mut buf).unwrap(), 0, "the peer sees the end");
        assert!(find(tag).is_some_and(|again| again.fd == link.fd));
        link.set_unacknowledged_limit(Duration::from_secs(60));
        assert!(
            find(tag).is_none(),
            "the tag is gone once the real value is set"
        );
        assert!(
            !waits_on_network(current_thread()),
            "this thread is running"
        );
    }
}
