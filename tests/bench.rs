//! The benchmark (`make bench`) runs outside `make test`, so these checks
//! keep it from rotting: its entry point loads every module and names its
//! options, and its percentile is the nearest-rank one its tables claim.

mod support;

use support::{ROOT, env, stdout_of};

fn bench_python(args: &[&str]) -> String {
    let output = env()
        .command(&format!("{ROOT}/target/devenv/venv/bin/python"))
        .current_dir(format!("{ROOT}/bench"))
        .args(args)
        .output()
        .expect("the environment's Python runs");
    stdout_of(output, &format!("python {args:?}"))
}

#[test]
fn the_benchmark_loads_and_lists_its_options() {
    let help = bench_python(&["bench.py", "--help"]);
    for option in [
        "--with-5000",
        "--concurrency",
        "--iam-rate-limit",
        "--resync",
    ] {
        assert!(help.contains(option), "{option} missing from:\n{help}");
    }
}

#[test]
fn latency_percentiles_are_nearest_rank() {
    let printed = bench_python(&[
        "-c",
        "from measure import percentile; v = list(range(1, 101)); \
         print(percentile(v, 50), percentile(v, 95), percentile(v, 99), percentile([7.0], 99))",
    ]);
    assert_eq!(printed.trim(), "50 95 99 7.0");
}
