//! Hot scheduler operations against a baseline measured in the same run.
//!
//! - `shuffle/push_pop` vs `baseline/vecdeque_push_pop`: one ready flow in and out of a shuffle
//!   queue, against a plain single-threaded `VecDeque`.
//! - `flow/notify_begin_finish` vs `baseline/plain_counter`: one full idle -> ready -> busy ->
//!   idle cycle, against three non-atomic updates of a `u64`.
//! - `sched/notify_run_complete`: the whole local path (notify, next_local, complete_local).
//!
//! Compare the ratios, not the absolute times: this machine is noisy.
use criterion::{Criterion, criterion_group, criterion_main};
use ferrix_sched::{Config, CoreId, FlowId, FlowState, Sched, ShuffleQueue};
use std::collections::VecDeque;
use std::hint::black_box;

fn queues(c: &mut Criterion) {
    let q = ShuffleQueue::new(1024);
    c.bench_function("shuffle/push_pop", |b| {
        b.iter(|| {
            q.push(black_box(7)).ok();
            black_box(q.pop())
        })
    });
    let mut d: VecDeque<u32> = VecDeque::with_capacity(1024);
    c.bench_function("baseline/vecdeque_push_pop", |b| {
        b.iter(|| {
            d.push_back(black_box(7));
            black_box(d.pop_front())
        })
    });
}

fn transitions(c: &mut Criterion) {
    let f = FlowState::new();
    c.bench_function("flow/notify_begin_finish", |b| {
        b.iter(|| {
            let t = f.notify(black_box(1));
            let n = f.begin();
            let done = f.finish();
            black_box((t, n, done))
        })
    });
    let mut x: u64 = 0;
    c.bench_function("baseline/plain_counter", |b| {
        b.iter(|| {
            x = black_box(x) + 1;
            x = black_box(x) | 2;
            x = black_box(x) & !3;
            black_box(x)
        })
    });
    let (sched, mut homes) = Sched::<()>::new(Config::new(2, 1024));
    let home = &mut homes[0];
    let flow = FlowId::new(CoreId(0), 5).expect("slot fits");
    c.bench_function("sched/notify_run_complete", |b| {
        b.iter(|| {
            sched.notify(home, flow, 1);
            let claim = sched.next_local(home);
            sched.complete_local(home, flow);
            black_box(claim)
        })
    });
}

criterion_group!(benches, queues, transitions);
criterion_main!(benches);
