//! Cycle-Stealing Central Queue (thesis 6.7.2, after Harchol-Balter et al.): requests are short
//! (service <= threshold) or long, each class has a FIFO queue; `fast` workers serve only short
//! requests, the other (slow) workers serve both, long first. Not work-conserving: a fast worker
//! idles while long requests wait.

use std::collections::VecDeque;

use ferrix_dist::Shape;

use crate::config::{Request, Source};
use crate::recorder::Recorder;

/// The thesis's split: fast workers = floor(n · CPU share of short requests), the rest slow
/// (bimodal-2 and bimodal-1 with 16 workers: 7 fast, 9 slow). Clamped to 1..n-1.
pub fn fast_workers(shape: &Shape, threshold: f64, n: usize) -> usize {
    let share = match shape {
        Shape::Bimodal { p, lo, hi } => {
            (if *lo <= threshold { p * lo } else { 0.0 })
                + (if *hi <= threshold {
                    (1.0 - p) * hi
                } else {
                    0.0
                })
        }
        other => match other.with_mean(1.0) {
            Ok(d) => {
                let mut rng = ferrix_dist::rng(0x5eed);
                let (mut short, mut all) = (0.0, 0.0);
                for _ in 0..1_000_000 {
                    let s = d.sample(&mut rng);
                    all += s;
                    if s <= threshold {
                        short += s;
                    }
                }
                short / all
            }
            Err(_) => 0.5,
        },
    };
    ((n as f64 * share).floor() as usize).clamp(1, n.saturating_sub(1).max(1))
}

pub fn run(src: &mut Source, rec: &mut Recorder, n: usize, fast: usize, threshold: f64) {
    let mut free = vec![0.0f64; n];
    let mut busy = vec![false; n];
    let mut short: VecDeque<Request> = VecDeque::new();
    let mut long: VecDeque<Request> = VecDeque::new();
    let start =
        |free: &mut [f64], busy: &mut [bool], rec: &mut Recorder, w: usize, at: f64, r: Request| {
            free[w] = at + r.service;
            busy[w] = true;
            rec.complete(r.idx, r.arrival, at + r.service, w, r.service);
        };
    let mut next = src.next_request();
    loop {
        let until = next.map_or(f64::INFINITY, |r| r.arrival);
        // Completions up to the next arrival, in time order.
        loop {
            let mut first: Option<(usize, f64)> = None;
            for w in 0..n {
                if busy[w] && free[w] <= until && first.is_none_or(|(_, f)| free[w] < f) {
                    first = Some((w, free[w]));
                }
            }
            let Some((w, t)) = first else { break };
            let job = if w < fast {
                short.pop_front()
            } else {
                long.pop_front().or_else(|| short.pop_front())
            };
            match job {
                Some(r) => start(&mut free, &mut busy, rec, w, t, r),
                None => busy[w] = false,
            }
        }
        let Some(r) = next else { break };
        let is_short = r.service <= threshold;
        let idle = |range: std::ops::Range<usize>| range.into_iter().find(|&w| !busy[w]);
        let w = if is_short {
            idle(0..fast).or_else(|| idle(fast..n))
        } else {
            idle(fast..n)
        };
        match w {
            Some(w) => start(&mut free, &mut busy, rec, w, r.arrival, r),
            None if is_short => short.push_back(r),
            None => long.push_back(r),
        }
        next = src.next_request();
    }
}
