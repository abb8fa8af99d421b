//! loom model of the shuffle queue: one producer, two consumers, a queue small enough to wrap.
//!
//! Checks that every pushed value is popped exactly once, that a popped value is the one that
//! was pushed (the value write is published by the cell's sequence number), that `Full` hands
//! the value back unchanged, and that whatever is left comes out in FIFO order.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p ferrix-sched --release --test loom_shuffle`
#![cfg(loom)]

use ferrix_sched::ShuffleQueue;
use loom::sync::Arc;
use loom::thread;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

#[test]
fn spmc_each_value_exactly_once() {
    model(|| {
        let q = Arc::new(ShuffleQueue::new(2));
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let q = q.clone();
                thread::spawn(move || q.pop())
            })
            .collect();
        // The producer: three pushes into two cells, so the third may find its cell still
        // claimed by a consumer and must get its value back.
        let mut refused = Vec::new();
        for v in 1..=3u32 {
            if let Err(full) = q.push(v) {
                assert_eq!(full.0, v);
                refused.push(v);
            }
        }
        let mut seen: Vec<u32> = consumers
            .into_iter()
            .filter_map(|c| c.join().expect("consumer panicked"))
            .collect();
        // Whatever is left comes out in order.
        let mut rest = Vec::new();
        while let Some(v) = q.pop() {
            rest.push(v);
        }
        assert!(
            rest.windows(2).all(|w| w[0] < w[1]),
            "FIFO broken: {rest:?}"
        );
        seen.extend(rest);
        seen.extend(refused);
        seen.sort_unstable();
        assert_eq!(seen, vec![1, 2, 3], "a value was lost or duplicated");
        assert!(q.is_empty());
    });
}

#[test]
fn consumer_sees_value_of_its_cell() {
    model(|| {
        let q = Arc::new(ShuffleQueue::new(2));
        let c = {
            let q = q.clone();
            thread::spawn(move || (q.pop(), q.pop()))
        };
        q.push(10).expect("room");
        q.push(20).expect("room");
        let (a, b) = c.join().expect("consumer panicked");
        // FIFO for one consumer: never 20 before 10.
        match (a, b) {
            (Some(x), Some(y)) => assert_eq!((x, y), (10, 20)),
            (Some(x), None) => assert_eq!(x, 10),
            (None, Some(y)) => assert!(y == 10 || y == 20),
            (None, None) => {}
        }
    });
}
