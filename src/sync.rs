//! Locking without poison panics. A thread that panics while holding a lock poisons it;
//! every lock in this crate guards data that is valid between any two statements (a
//! counter, a pool of buffers, a list), so the next user takes it as it is instead of
//! panicking in turn and taking the request, or the process, down with it.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// `mutex.lock()`, recovering the guard from a poisoned lock.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
