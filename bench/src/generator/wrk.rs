//! wrk, when installed: the closed-loop ceiling of the harness's echo
//! endpoint, beside which the generator's own ceiling is stepped.

use crate::record::WrkRecord;

/// wrk's connections, and the generator's requests in flight when its
/// ceiling is measured beside it: like for like.
pub const CONNECTIONS: usize = 32;

/// Runs `wrk -t1 -c32 --latency` (one thread, like the generator's client
/// runtime) for `seconds` against `url`; `None` when wrk is not installed
/// or its output does not parse.
pub fn run(url: &str, seconds: f64) -> Option<WrkRecord> {
    let duration = format!("{}s", seconds.ceil() as u64);
    let connections = format!("-c{CONNECTIONS}");
    let args = [
        "-t1",
        connections.as_str(),
        "-d",
        duration.as_str(),
        "--latency",
        url,
    ];
    let output = std::process::Command::new("wrk").args(args).output().ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    parse(&text).map(|(rps, p50)| WrkRecord {
        command: format!("wrk {}", args.join(" ")),
        requests_per_s: rps,
        p50_us: p50,
    })
}

/// (requests/s, p50 µs) from wrk's output.
fn parse(text: &str) -> Option<(f64, Option<f64>)> {
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))?
        .trim()
        .parse()
        .ok()?;
    let p50 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("50%"))
        .and_then(|v| {
            let v = v.trim();
            let (number, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
            let number: f64 = number.parse().ok()?;
            Some(match unit {
                "us" => number,
                "ms" => number * 1000.0,
                "s" => number * 1e6,
                _ => return None,
            })
        });
    Some((rps, p50))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_read() {
        let text = "Running 2s test @ http://127.0.0.1:1/echo\n  Latency Distribution\n     50%  152.00us\n     75%  1.20ms\nRequests/sec:  41234.56\nTransfer/sec:      5.00MB\n";
        assert_eq!(parse(text), Some((41234.56, Some(152.0))));
        assert_eq!(
            parse("     50%    1.50ms\nRequests/sec: 10\n"),
            Some((10.0, Some(1500.0)))
        );
        assert_eq!(parse("nothing"), None);
    }
}
