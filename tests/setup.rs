//! The README's two commands set up a fresh machine themselves: every entry
//! point reaches hack/deps.sh first (so a new prerequisite cannot be added to
//! one path only), and without root deps.sh stops at once with the command
//! to run.

mod support;

use std::process::Command;

/// The commands `make -n TARGET` would run, in order.
fn planned_commands(target: &str) -> Vec<String> {
    let output = Command::new("make")
        .args(["-n", "--no-print-directory", target])
        .current_dir(support::ROOT)
        .output()
        .expect("make runs");
    support::stdout_of(output, &format!("make -n {target}"))
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn every_entry_point_installs_dependencies_first() {
    for target in ["test", "demo", "bench", "devenv-up", "image-binary"] {
        let commands = planned_commands(target);
        assert_eq!(
            commands.first().map(String::as_str),
            Some("hack/deps.sh"),
            "`make {target}` must run hack/deps.sh before anything else; it plans {commands:#?}"
        );
    }
}

#[test]
fn ci_holds_no_install_step_of_its_own() {
    let ci = std::fs::read_to_string(format!("{}/.ci/run", support::ROOT)).unwrap();
    assert!(ci.contains("make test"), ".ci/run must call `make test`");
    for installer in ["apt-get", "apt ", "pip install", "rustup", "go install"] {
        assert!(
            !ci.contains(installer),
            ".ci/run installs something itself ({installer:?}); put it in hack/deps.sh"
        );
    }
}

#[test]
fn without_root_a_missing_package_stops_at_once_with_the_command_to_run() {
    let script = std::fs::read_to_string(format!("{}/hack/deps.sh", support::ROOT)).unwrap();
    // As root (CI), drop to nobody; otherwise we already are a plain user.
    let mut command = if running_as_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "bash",
            "-s",
        ]);
        c
    } else {
        let mut c = Command::new("bash");
        c.arg("-s");
        c
    };
    command
        .env("LPO_DEPS_ASSUME_MISSING", "musl-tools")
        .current_dir("/");
    let output = support::run_with_stdin(command, &script);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "deps.sh must fail: {stderr}");
    assert!(
        stderr.contains("apt-get install -y --no-install-recommends musl-tools"),
        "the message must give the exact command: {stderr}"
    );
    assert!(
        !stderr.contains("installing from Debian"),
        "without root it must stop, not try to install: {stderr}"
    );
}

/// Whether this test runs as root (uid 0), read from /proc without libc.
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next().map(|uid| uid == "0"))
        .unwrap()
}
