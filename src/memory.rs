//! Allocator tuning. The large buffers (the 19 MiB argon2id working memory that
//! `auth::password` keeps per hashing permit, big request and response bodies) are made
//! and freed on worker and blocking-pool threads. glibc's malloc raises its mmap threshold
//! dynamically after the first such buffer is freed, so later ones come from per-thread
//! arenas and stay resident after being freed: with a buffer per hash, RSS grew by hundreds
//! of MB under a login load. A fixed threshold keeps every buffer of 1 MiB or more in its
//! own mapping, returned to the OS on free, and capping the arenas bounds fragmentation.

/// Allocations at or above this size get their own mapping and are unmapped on free.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD_BYTES: libc::c_int = 1024 * 1024;
/// Two arenas per core keeps allocation contention low on small machines.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS_PER_CORE: usize = 2;

pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arenas = libc::c_int::try_from(cores * ARENAS_PER_CORE).unwrap_or(8);
        // SAFETY: mallopt only adjusts allocator parameters; it is called before any
        // other thread exists, and invalid values are rejected by glibc (returns 0).
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }
}
