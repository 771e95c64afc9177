//! Test support for the tests that run against the real environment
//! (hack/devenv.sh): starts it once per test run or reuses a running one,
//! gives each test its own namespace, IAM user names and operator process,
//! and removes what the test made. Results are read back the way a user
//! would: with the built kubectl and the AWS CLI.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::{
    io::Write,
    process::{Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

mod age;
mod environment;
mod events;
mod iam;
mod kubernetes;
mod operator;
mod organization;
mod own_account;

// Each test binary uses a part of these.
#[allow(unused_imports)]
pub use age::*;
#[allow(unused_imports)]
pub use environment::*;
#[allow(unused_imports)]
pub use events::*;
#[allow(unused_imports)]
pub use iam::*;
#[allow(unused_imports)]
pub use kubernetes::*;
#[allow(unused_imports)]
pub use operator::*;
#[allow(unused_imports)]
pub use organization::*;
#[allow(unused_imports)]
pub use own_account::*;

/// The documents of a multi-document YAML text (a manifest, a `helm
/// template` rendering) as JSON values, empty documents left out.
pub fn yaml_documents(text: &str) -> Vec<serde_json::Value> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(text)
        .map(|document| serde_json::Value::deserialize(document).unwrap())
        .filter(|document| !document.is_null())
        .collect()
}

/// Runs `command` with `input` on its stdin and returns what it printed.
pub fn run_with_stdin(mut command: Command, input: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// The stdout of a command that must have succeeded (else its stderr, in the panic).
pub fn stdout_of(output: Output, what: &str) -> String {
    assert!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

/// A unique, lowercase name with the given prefix.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}-{}-{n}-{:x}", std::process::id(), nanos & 0xfffff)
}

/// A password that meets IAM's default rules and any test policy (20+
/// characters with all four classes), unique per call.
pub fn strong_password(tag: &str) -> String {
    format!("Pw_{tag}_{}_Xy9!", unique("q").replace('-', "_"))
}

/// Polls `check` until it returns true or `timeout` passes (then panics).
pub fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

/// Runs `check` (which asserts) on every poll for the whole `period`: for
/// claims that something does NOT happen, checked throughout, not only at the end.
pub fn holds_for(period: Duration, mut check: impl FnMut()) {
    let until = Instant::now() + period;
    while Instant::now() < until {
        check();
        thread::sleep(Duration::from_millis(200));
    }
    check();
}

/// Polls `get` until it returns Some or `timeout` passes (then panics).
pub fn wait_for<T>(what: &str, timeout: Duration, mut get: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = get() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

/// How long a LoginProfile may take to converge in a test: a deadline, not
/// a speed target (those are the benchmark's). Generous, because a cold
/// `make test` runs two test binaries beside the builds on two cores (a
/// RootLoginProfile once took more than 30 s there).
pub const CONVERGE: Duration = Duration::from_secs(60);
