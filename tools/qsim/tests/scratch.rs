use qsim::*;
#[test]
fn scratch() {
    for (m, d, n, load) in [
        ("sven:interval=100", "exp", 16, 1.3), ("sven:interval=100", "exp", 16, 0.8),("sven:interval=100", "det", 16, 1.1),
        ("zygos:interrupts=0", "exp", 16, 0.8), ("zygos:interrupts=0", "exp", 16, 0.85),("zygos:interrupts=0", "exp", 16, 0.9), ("zygos:interrupts=0", "exp", 16, 0.95),
        ("zygos:interrupts=1,ipi=0.05,steal=0.05", "exp", 16, 0.8),
        ("pl:d=2", "det", 16, 0.8), ("partitioned-fcfs", "det", 16, 0.8),("pl:d=2", "exp", 16, 0.8), ("partitioned-fcfs", "exp", 16, 0.8),("pl:d=2", "bimodal-1", 16, 0.8), ("partitioned-fcfs", "bimodal-1", 16, 0.8),
        ("jsq", "exp", 16, 0.8), ("jbsq:n=64", "exp", 16, 0.8),("jsq", "det", 16, 0.9), ("jbsq:n=2", "det", 16, 0.9),("jsq", "exp", 16, 0.9), ("jbsq:n=2", "exp", 16, 0.9),
        ("mg-n-fcfs", "bimodal-2", 16, 0.4),("mg-n-ps", "bimodal-2", 16, 0.4),("edf", "bimodal-2", 16, 0.4),("cscq", "bimodal-2", 16, 0.4),
        ("mg-n-fcfs", "bimodal-1", 16, 0.7),("mg-n-ps", "bimodal-1", 16, 0.7),("mg-n-fcfs", "det", 16, 0.7),("mg-n-ps", "det", 16, 0.7),
    ] {
        let mut c = SimConfig::new(m.parse().unwrap(), n, d.parse().unwrap(), load);
        c.requests = 1_000_000;
        let r = simulate(&c).unwrap();
        println!("{m:22} {d:10} n={n:2} load={load:.3} mean={:.4}±{:.4} p99={:.3}±{:.3} util={:.4}±{:.4} steal={:.3} drop={:.3}",
          r.mean.value, r.mean.ci95, r.p99.value, r.p99.ci95, r.utilisation.value, r.utilisation.ci95, r.steal_rate, r.drop_rate);
    }
}
