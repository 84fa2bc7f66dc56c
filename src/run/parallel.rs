//! Work on many items with a bounded number of threads: each item's work starts a helm
//! process (the fleet's listings and pulls, the preflight's renders), and a laptop, a CI
//! runner or a registry's rate limit wants a bound on how many run at once.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `work` on every item, at most `workers` at a time, results in the items' order.
pub fn in_parallel<T: Sync, R: Send>(items: &[T], workers: usize, work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers.max(1).min(items.len()) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let result = work(item);
                    results.lock().expect("results")[i] = Some(result);
                }
            });
        }
    });
    results.into_inner().expect("results").into_iter().map(|r| r.expect("every item worked")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_runs_on_every_item_in_order_and_never_more_than_the_workers_at_once() {
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let items: Vec<usize> = (0..23).collect();
        let out = in_parallel(&items, 4, |i| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(5));
            running.fetch_sub(1, Ordering::SeqCst);
            i * 2
        });
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert!(most.load(Ordering::SeqCst) <= 4);
        assert!(in_parallel(&Vec::<u8>::new(), 4, |_| 0).is_empty());
    }
}
