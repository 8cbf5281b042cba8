//! Process memory for the benchmarks' reports (Linux `/proc/self`; zero
//! elsewhere). Included by each bench with `#[path]`.

/// A `/proc/self/status` field in kB, 0 when unreadable.
pub fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Resets VmHWM to the current RSS (`clear_refs` 5), so the peak read
/// afterwards belongs to what runs next. False when the kernel refuses.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

pub fn mib(kb: u64) -> String {
    format!("{:.1} MiB", kb as f64 / 1024.0)
}
