//! `ferrix demo`, the README's main job, on a shortened sweep: it boots the synthetic server,
//! loads it with Lancet, and prints the p99-vs-load table next to the queueing models, with a
//! PNG plot and a CSV that a person can open.

const FERRIX: &str = env!("CARGO_BIN_EXE_ferrix-in-test");

/// Width and height from a PNG's IHDR chunk, if `b` is a PNG.
fn png_size(b: &[u8]) -> Option<(u32, u32)> {
    let sig = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    if b.get(..8)? != sig || b.get(12..16)? != b"IHDR" {
        return None;
    }
    let w = u32::from_be_bytes(b.get(16..20)?.try_into().ok()?);
    let h = u32::from_be_bytes(b.get(20..24)?.try_into().ok()?);
    Some((w, h))
}

#[test]
fn demo_prints_the_table_the_plot_and_the_csv() {
    let dir = std::env::temp_dir().join(format!("ferrix-demo-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (png, csv) = (dir.join("demo.png"), dir.join("demo.csv"));
    let out = std::process::Command::new(FERRIX)
        .args(["demo", "--loads", "0.1,0.2", "--step-secs", "2", "--png"])
        .arg(&png)
        .arg("--csv")
        .arg(&csv)
        .output()
        .expect("run ferrix demo");
    let table = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{table}\n{log}");
    assert!(table.contains("M/G/2/FCFS p99"), "{table}");
    // One row per load with a measured p99 and the model's.
    let rows: Vec<Vec<f64>> = table
        .lines()
        .filter_map(|l| {
            let w: Vec<f64> = l
                .split(|c: char| c.is_whitespace() || c == '[' || c == ']' || c == ',')
                .filter(|x| !x.is_empty())
                .map_while(|x| x.parse().ok())
                .collect();
            (w.len() >= 8).then_some(w)
        })
        .collect();
    assert!(!rows.is_empty(), "{table}");
    for r in &rows {
        let (achieved, p99, model) = (r[2], r[3], r[4]);
        assert!(achieved > 0.0 && p99 > 0.0, "{table}");
        // Exponential S̄ = 2 ms at light load: the M/G/2/FCFS p99 is about ln(100)·S̄ ≈ 9.2 ms.
        assert!((7_000.0..14_000.0).contains(&model), "{table}");
        // The guest cannot beat the model's single queue by much (sampling noise only).
        assert!(p99 > 0.5 * model, "{table}");
    }
    let (w, h) = png_size(&std::fs::read(&png).unwrap()).expect("a PNG");
    assert!(w >= 400 && h >= 300, "{w}x{h}");
    assert!(std::fs::metadata(&png).unwrap().len() > 5_000);
    let csv_text = std::fs::read_to_string(&csv).unwrap();
    assert!(csv_text.starts_with("load,offered_rps"), "{csv_text}");
    assert_eq!(csv_text.lines().count(), rows.len() + 1, "{csv_text}");
    let _ = std::fs::remove_dir_all(&dir);
}
