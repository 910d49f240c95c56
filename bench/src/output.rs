//! A run's folder, rendered from its records alone: the files
//! ([`files`]), `REPORT.md` ([`report`]) and the charts ([`charts`]).
//! Nothing here measures or starts a process.

pub mod charts;
pub mod files;
pub mod report;

/// Bytes as MiB with one decimal, or a dash.
pub fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("–".to_owned(), |b| {
        format!("{:.1} MiB", b as f64 / 1048576.0)
    })
}

/// Seconds with a decimal only when it says something (`15`, `0.5`).
pub fn seconds(s: f64) -> String {
    let text = format!("{s:.1}");
    text.strip_suffix(".0").map_or(text.clone(), str::to_owned)
}

/// A duration in microseconds as a short axis label.
pub fn micros(us: f64) -> String {
    let trim = |v: f64| {
        let s = format!("{v:.1}");
        s.strip_suffix(".0").map_or(s.clone(), str::to_owned)
    };
    if us < 1000.0 {
        format!("{} µs", trim(us))
    } else if us < 1_000_000.0 {
        format!("{} ms", trim(us / 1000.0))
    } else {
        format!("{} s", trim(us / 1e6))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn axis_labels_carry_their_unit() {
        assert_eq!(super::micros(250.0), "250 µs");
        assert_eq!(super::micros(1500.0), "1.5 ms");
        assert_eq!(super::micros(20_000.0), "20 ms");
        assert_eq!(super::micros(2_500_000.0), "2.5 s");
    }
}
