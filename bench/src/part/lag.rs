//! The microservices' replicated read model, measured: the ledger exports
//! how far behind the transfers it applied were
//! (`ledger_replication_lag_seconds`, a Prometheus histogram, from a
//! transfer's commit to its entry applied). The harness reads it before
//! and after the load and keeps the difference: the lag of exactly the
//! entries that run produced.

use crate::record::LagRecord;

/// The histogram as the ledger's `/metrics` shows it at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Cumulative counts per upper bound in seconds (`le`), `+Inf` last.
    pub buckets: Vec<(f64, u64)>,
    /// Sum of the lags, seconds.
    pub sum_s: f64,
    /// Entries.
    pub count: u64,
}

const NAME: &str = "ledger_replication_lag_seconds";

/// Reads the histogram out of a Prometheus text page; `None` when the page
/// does not have it (no entry applied yet shows no histogram at all).
pub fn parse(page: &str) -> Option<Sample> {
    let mut sample = Sample::default();
    let mut seen = false;
    for line in page.lines() {
        let Some(rest) = line.strip_prefix(NAME) else {
            continue;
        };
        let (key, value) = rest.rsplit_once(' ')?;
        if let Some(labels) = key.strip_prefix("_bucket{") {
            let le = labels
                .split(',')
                .find_map(|l| l.trim().strip_prefix("le=\""))?
                .trim_end_matches(['"', '}']);
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            sample.buckets.push((le, value.parse::<f64>().ok()? as u64));
        } else if key == "_sum" {
            sample.sum_s = value.parse().ok()?;
            seen = true;
        } else if key == "_count" {
            sample.count = value.parse::<f64>().ok()? as u64;
            seen = true;
        }
    }
    sample.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    seen.then_some(sample)
}

/// `after` minus `before` (`before` absent: nothing was applied yet).
pub fn between(before: Option<&Sample>, after: &Sample) -> Option<LagRecord> {
    let empty = Sample::default();
    let before = before.unwrap_or(&empty);
    let entries = after.count.checked_sub(before.count)?;
    if entries == 0 {
        return None;
    }
    let earlier = |le: f64| before.buckets.iter().find(|b| b.0 == le).map_or(0, |b| b.1);
    let within = after
        .buckets
        .iter()
        .filter(|b| b.0.is_finite())
        .map(|&(le, n)| (le, n.saturating_sub(earlier(le)) as f64 / entries as f64))
        .collect();
    Some(LagRecord {
        entries,
        mean_ms: (after.sum_s - before.sum_s).max(0.0) * 1000.0 / entries as f64,
        within,
    })
}

/// GETs `url` (a ledger's `/metrics`) and reads the histogram.
pub async fn sample(http: &reqwest::Client, url: &str) -> Option<Sample> {
    let page = http.get(url).send().await.ok()?.text().await.ok()?;
    parse(&page)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "# TYPE ledger_replication_lag_seconds histogram\n\
        ledger_replication_lag_seconds_bucket{le=\"0.0001\"} 0\n\
        ledger_replication_lag_seconds_bucket{le=\"0.001\"} 40\n\
        ledger_replication_lag_seconds_bucket{le=\"0.01\"} 90\n\
        ledger_replication_lag_seconds_bucket{le=\"+Inf\"} 100\n\
        ledger_replication_lag_seconds_sum 0.5\n\
        ledger_replication_lag_seconds_count 100\n\
        ledger_entries_total 100\n";

    #[test]
    fn the_lag_of_a_run_is_the_difference_of_two_pages() {
        let after = parse(PAGE).expect("a histogram");
        assert_eq!(after.count, 100);
        assert_eq!(after.buckets.last(), Some(&(f64::INFINITY, 100)));
        let before = Sample {
            buckets: vec![(0.0001, 0), (0.001, 10), (0.01, 10), (f64::INFINITY, 20)],
            sum_s: 0.3,
            count: 20,
        };
        let lag = between(Some(&before), &after).expect("entries in between");
        assert_eq!(lag.entries, 80);
        assert!((lag.mean_ms - 2.5).abs() < 1e-9, "{lag:?}");
        assert_eq!(
            lag.within,
            vec![(0.0001, 0.0), (0.001, 30.0 / 80.0), (0.01, 1.0)]
        );
        assert_eq!(lag.bound_for(0.99), Some(0.01));
        // From nothing: all of it; nothing in between: no record.
        assert_eq!(between(None, &after).map(|l| l.entries), Some(100));
        assert_eq!(between(Some(&after), &after), None);
        assert_eq!(parse("ledger_entries_total 3\n"), None);
    }
}
