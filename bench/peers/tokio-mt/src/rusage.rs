//! The process's resource use, as the shared peers report it: shared by
//! tokio_mt_server and tokio_placed.

fn rusage() -> libc::rusage {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage
}

/// The peak resident set size in KiB.
pub fn peak_rss_kb() -> i64 {
    rusage().ru_maxrss
}

/// User plus system CPU seconds of every thread so far.
#[allow(dead_code)] // tokio_mt_server reports no CPU time
pub fn cpu_seconds() -> f64 {
    let usage = rusage();
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}
