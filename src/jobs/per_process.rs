//! Process-wide state that a process forked from ours does not inherit.
//!
//! After `fork()` the child runs only the thread that forked. Whatever the parent's other
//! threads had in hand is copied but dead there: a worker registered as running has no thread,
//! a running job's live progress is frozen, and a lock one of them held at that instant stays
//! locked forever. A `PerProcess` value is tagged with the id of the process that made it; a
//! process that finds another process's value makes its own and never touches the old one: not
//! its lock, which may be held, and not its drop, which would act on the parent's threads
//! (detach a thread handle that is not this process's). The old value is leaked: one per fork
//! that uses it, as large as the parent's value was at the fork.

use std::marker::PhantomData;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

/// A `T` of this process, made with `T::default()` at its first use in each process.
pub struct PerProcess<T> {
    current: AtomicPtr<Owned<T>>,
    /// Shared between threads as a `T` is: `Sync` only if `T` is.
    _value: PhantomData<T>,
}

struct Owned<T> {
    pid: u32,
    value: T,
}

impl<T: Default> PerProcess<T> {
    pub const fn new() -> PerProcess<T> {
        PerProcess {
            current: AtomicPtr::new(ptr::null_mut()),
            _value: PhantomData,
        }
    }

    /// This process's value.
    pub fn get(&self) -> &T {
        let pid = std::process::id();
        loop {
            let current = self.current.load(Ordering::Acquire);
            // SAFETY: a non-null pointer here comes from `Box::into_raw` below and is never
            // freed once published.
            if let Some(owned) = unsafe { current.as_ref() } {
                if owned.pid == pid {
                    return &owned.value;
                }
            }
            let fresh = Box::into_raw(Box::new(Owned {
                pid,
                value: T::default(),
            }));
            match self
                .current
                .compare_exchange(current, fresh, Ordering::AcqRel, Ordering::Acquire)
            {
                // SAFETY: just published; never freed from now on.
                Ok(_) => return unsafe { &(*fresh).value },
                // Another thread of this process published its value first: use that one.
                // SAFETY: `fresh` was never published.
                Err(_) => drop(unsafe { Box::from_raw(fresh) }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::sync::Mutex;

    use super::*;

    static VALUE: PerProcess<Mutex<u32>> = PerProcess::new();

    #[test]
    fn a_forked_child_gets_a_fresh_value_even_when_the_parent_s_is_locked() {
        *VALUE.get().lock().unwrap() = 7;
        let (locked, release) = (mpsc::channel(), mpsc::channel::<()>());
        let holder = std::thread::spawn(move || {
            let guard = VALUE.get().lock().unwrap();
            locked.0.send(()).unwrap();
            release.1.recv().unwrap();
            drop(guard);
        });
        locked.1.recv().unwrap();
        // SAFETY: the child calls only what a child of a threaded process may (the allocator
        // is fork-safe in glibc) and ends with `_exit`.
        let child = unsafe { libc::fork() };
        assert!(child >= 0, "fork failed");
        if child == 0 {
            // SAFETY: as above; the alarm ends a child that would hang on the parent's lock.
            unsafe {
                libc::alarm(10);
                let fresh = *VALUE.get().lock().unwrap() == 0;
                libc::_exit(if fresh { 0 } else { 1 });
            }
        }
        let mut status = 0;
        // SAFETY: waits for the child just forked.
        assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
        release.0.send(()).unwrap();
        holder.join().unwrap();
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "the child's value was its parent's, or it hung on its lock (status {status})"
        );
        assert_eq!(
            *VALUE.get().lock().unwrap(),
            7,
            "the parent keeps its value"
        );
    }
}
