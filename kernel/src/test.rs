//! In-guest tests: plain functions returning [`TestResult`], run one after another on the
//! calling core; the runner prints one line per test and the summary line
//! `N passed, N failed` that CI understands.

use alloc::string::String;

/// A test's outcome: `Err` carries the failure message.
pub type TestResult = Result<(), String>;

/// A named in-guest test.
#[derive(Clone, Copy)]
pub struct TestCase {
    pub name: &'static str,
    pub func: fn() -> TestResult,
}

/// Builds a [`TestCase`] from a function path.
#[macro_export]
macro_rules! test_case {
    ($f:path) => {
        $crate::test::TestCase {
            name: stringify!($f),
            func: $f,
        }
    };
}

/// Fails the test (returns `Err`) unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr) => {
        if !$cond {
            return Err(alloc::format!("{}:{}: check failed: {}", file!(), line!(), stringify!($cond)));
        }
    };
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(alloc::format!("{}:{}: {}", file!(), line!(), format_args!($($fmt)+)));
        }
    };
}

/// Counts of a test run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub passed: usize,
    pub failed: usize,
}

/// Runs every test of every group; `filter` keeps tests whose name contains it.
pub fn run(groups: &[&[TestCase]], filter: Option<&str>) -> Summary {
    let mut s = Summary::default();
    for t in groups.iter().flat_map(|g| g.iter()) {
        if filter.is_some_and(|f| !t.name.contains(f)) {
            continue;
        }
        match (t.func)() {
            Ok(()) => {
                s.passed += 1;
                crate::println!("test {} ... ok", t.name);
            }
            Err(e) => {
                s.failed += 1;
                crate::println!("test {} ... FAILED: {e}", t.name);
            }
        }
    }
    crate::println!("{} passed, {} failed", s.passed, s.failed);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> TestResult {
        ensure!(core::hint::black_box(2) == 2);
        Ok(())
    }

    fn bad() -> TestResult {
        ensure!(core::hint::black_box(2) == 3, "arithmetic is {}", "hard");
        Ok(())
    }

    #[test]
    fn runner_counts_and_filters() {
        let g: &[TestCase] = &[test_case!(good), test_case!(bad)];
        assert_eq!(
            run(&[g], None),
            Summary {
                passed: 1,
                failed: 1
            }
        );
        assert_eq!(
            run(&[g], Some("good")),
            Summary {
                passed: 1,
                failed: 0
            }
        );
        let e = bad().unwrap_err();
        assert!(e.contains("arithmetic is hard"), "{e}");
    }
}
