//! This process's memory and CPU time, from /proc (Linux), for the
//! benchmarks' reports.
#![allow(dead_code)] // Each example uses some of these.

/// A `/proc/self/status` field in kB (`VmRSS`, `VmHWM`), as MiB; 0 if absent.
fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| {
            l.strip_prefix(field)
                .is_some_and(|rest| rest.starts_with(':'))
        })
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Resident memory now (MiB).
pub fn rss_mib() -> f64 {
    status_mib("VmRSS")
}

/// Peak resident memory (MiB) since the start or the last `reset_peak_rss`.
pub fn peak_rss_mib() -> f64 {
    status_mib("VmHWM")
}

/// Resets the peak (Linux ≥ 4.0); false where the kernel refuses.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// CPU seconds (user + system) of this process, all threads, from
/// /proc/self/stat (in clock ticks of 1/100 s, Linux's USER_HZ).
pub fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which may hold spaces and ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
