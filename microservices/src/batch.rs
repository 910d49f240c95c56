//! Batches for the background feeds (settled transfers to the accounts,
//! committed transfers to the ledger): nothing waits on them, so the first
//! item of a batch may wait a short linger for others, as a Kafka
//! producer's `linger.ms` does. Sent as soon as it arrives, a batch would
//! be one item at moderate rates: one more network call per transfer.

use std::time::Duration;

use tokio::sync::mpsc;

/// Fills `batch` with the next batch from `rx`: waits for a first item
/// (unless `batch` holds some already), then, unless `max` are there,
/// `linger` for more, and takes what has arrived, up to `max` in all.
/// `false` when the channel is closed and `batch` empty. Cancel safe:
/// dropped while it lingers, what it took stays in `batch` for the next
/// call.
pub async fn next<T>(
    rx: &mut mpsc::Receiver<T>,
    batch: &mut Vec<T>,
    max: usize,
    linger: Duration,
) -> bool {
    if batch.is_empty() && rx.recv_many(batch, max).await == 0 {
        return false;
    }
    if batch.len() < max {
        tokio::time::sleep(linger).await;
        while batch.len() < max
            && let Ok(item) = rx.try_recv()
        {
            batch.push(item);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_first_item_waits_the_linger_for_others_up_to_the_bound() {
        let (tx, mut rx) = mpsc::channel(16);
        tx.send(1).await.expect("the receiver is open");
        let late = tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(3)).await;
            for i in 2..=5 {
                late.send(i).await.expect("the receiver is open");
            }
        });
        let mut batch = Vec::new();
        assert!(next(&mut rx, &mut batch, 4, Duration::from_millis(5)).await);
        assert_eq!(
            batch,
            vec![1, 2, 3, 4],
            "what arrived within the linger, up to the bound"
        );
        batch.clear();
        let started = tokio::time::Instant::now();
        assert!(next(&mut rx, &mut batch, 4, Duration::from_millis(5)).await);
        assert_eq!(batch, vec![5]);
        assert_eq!(
            started.elapsed(),
            Duration::from_millis(5),
            "a lone item waits the linger"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_batch_goes_at_once_and_a_closed_channel_ends() {
        let (tx, mut rx) = mpsc::channel(16);
        for i in 0..4 {
            tx.send(i).await.expect("the receiver is open");
        }
        drop(tx);
        let mut batch = Vec::new();
        let started = tokio::time::Instant::now();
        assert!(next(&mut rx, &mut batch, 4, Duration::from_secs(1)).await);
        assert_eq!(batch.len(), 4);
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "a full batch does not linger"
        );
        batch.clear();
        assert!(!next(&mut rx, &mut batch, 4, Duration::from_secs(1)).await);
        assert!(batch.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn what_a_cancelled_linger_took_goes_with_the_next_batch() {
        let (tx, mut rx) = mpsc::channel(16);
        tx.send(1).await.expect("the receiver is open");
        let mut batch = Vec::new();
        let cancelled = tokio::time::timeout(
            Duration::from_millis(1),
            next(&mut rx, &mut batch, 4, Duration::from_millis(5)),
        )
        .await;
        assert!(cancelled.is_err());
        assert_eq!(batch, vec![1], "taken, not lost");
        // Nothing more arrives: the next call does not wait for a new item.
        assert!(next(&mut rx, &mut batch, 4, Duration::from_millis(5)).await);
        assert_eq!(batch, vec![1]);
    }
}
