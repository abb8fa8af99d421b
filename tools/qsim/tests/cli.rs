//! The command line: bad input is one line and a non-zero exit, never a panic; commands write
//! what they promise.

use qsim::main_with_args;

fn args(a: &[&str]) -> Vec<String> {
    std::iter::once("qsim")
        .chain(a.iter().copied())
        .map(String::from)
        .collect()
}

#[test]
fn bad_input_fails_cleanly() {
    for bad in [
        &["sweep", "--dist", "weibull"][..],
        &["sweep", "--loads", "0.9:0.1:0.1"],
        &["sweep", "--model", "lifo"],
        &["sweep", "--workers", "0"],
        &["run", "--load", "-1"],
        &["max-load", "--tol", "0"],
        &["figure", "9.9"],
        &["run"],
        &["nonsense"],
    ] {
        assert_ne!(main_with_args(args(bad)), 0, "{bad:?}");
    }
    assert_eq!(main_with_args(args(&["--help"])), 0);
}

#[test]
fn sweep_writes_csv_json_and_png() {
    let dir = std::env::temp_dir().join(format!("qsim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (csv, json, png) = (dir.join("s.csv"), dir.join("s.json"), dir.join("s.png"));
    let code = main_with_args(args(&[
        "sweep",
        "--model",
        "mg-n-fcfs",
        "--model",
        "jbsq:n=2,delay=0",
        "--workers",
        "4",
        "--dist",
        "exp",
        "--loads",
        "0.2,0.6",
        "--requests",
        "20000",
        "--csv",
        csv.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--plot",
        png.to_str().unwrap(),
    ]));
    assert_eq!(code, 0);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 1 + 4);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(4));
    let png = ferrix_latplot::inspect::png(&png).unwrap();
    assert_eq!((png.width, png.height), (560, 460));
    assert!(png.ink() > 0.005, "ink {}", png.ink());
    // One curve per model, each in its colour.
    assert!(png.has(ferrix_latplot::color(0)) && png.has(ferrix_latplot::color(1)));
    assert!(!png.has(ferrix_latplot::color(2)));
    std::fs::remove_dir_all(&dir).ok();
}
