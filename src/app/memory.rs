//! How the process's allocator hands memory back to the system.
//!
//! glibc serves allocations of 128 KiB and more with `mmap` and returns them
//! on `free`, but raises that threshold to the size of each such block freed
//! (up to 32 MiB), and the trim threshold with it. After one large request
//! body, the next ones of a similar size are carved from the heap and stay
//! resident once freed: a helper that handled a few bodies of 16 MiB keeps
//! tens of megabytes it no longer uses. Fixing both thresholds keeps large
//! buffers mapped only while they are in use.

/// Blocks of this size and more are mapped on their own and unmapped on free.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 256 * 1024;
/// Free memory at the top of the heap beyond this is returned to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: i32 = 1024 * 1024;

/// Fixes the allocator's thresholds; called once, before any thread starts.
pub(super) fn return_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use nix::libc::{mallopt, M_MMAP_THRESHOLD, M_TRIM_THRESHOLD};
        // SAFETY: `mallopt` only sets allocator parameters; it is called
        // before the runtime starts any thread, and values out of range are
        // refused (a zero return), not undefined.
        let set = unsafe {
            mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) != 0
                && mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) != 0
        };
        debug_assert!(set, "mallopt refused the thresholds");
    }
}
