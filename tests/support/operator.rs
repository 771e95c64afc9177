//! The operator as a process, the way a user runs it: one per test,
//! watching its namespace, logging to target/test-logs/, killed when dropped.

use std::{
    fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command},
    thread,
    time::{Duration, Instant},
};

use super::*;

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The operator, run as a process the way a user runs it, watching one
/// namespace; killed when dropped. Its logs go to target/test-logs/.
pub struct Operator {
    child: Child,
    pub log_path: PathBuf,
    pub http: String,
}

impl Operator {
    pub fn start(namespace: &str, extra_args: &[&str]) -> Self {
        Self::start_with_log_filter(namespace, extra_args, "info,loginprofile_operator=debug")
    }

    pub fn start_with_log_filter(namespace: &str, extra_args: &[&str], log_filter: &str) -> Self {
        Self::start_custom(namespace, namespace, extra_args, log_filter, None)
    }

    /// Watches `namespace`, keeps its key in `operator_namespace`, and talks
    /// to the API server with `kubeconfig` (default: the admin's).
    pub fn start_custom(
        namespace: &str,
        operator_namespace: &str,
        extra_args: &[&str],
        log_filter: &str,
        kubeconfig: Option<&Path>,
    ) -> Self {
        Self::spawn(
            namespace,
            operator_namespace,
            extra_args,
            log_filter,
            kubeconfig,
            &[],
        )
        .once_ready()
    }

    /// Watches `namespace` with `extra_env` (credentials of its own, say)
    /// and waits until it is ready.
    pub fn start_with_env(
        namespace: &str,
        extra_args: &[&str],
        extra_env: &[(&str, &str)],
    ) -> Self {
        Self::spawn(
            namespace,
            namespace,
            extra_args,
            "info,loginprofile_operator=debug",
            None,
            extra_env,
        )
        .once_ready()
    }

    /// This operator, once /readyz answers OK.
    fn once_ready(self) -> Self {
        wait_until("the operator to be ready", Duration::from_secs(30), || {
            self.is_ready()
        });
        self
    }

    /// Whether /readyz answers OK.
    pub fn is_ready(&self) -> bool {
        Command::new("curl")
            .args(["-sf", &format!("{}/readyz", self.http)])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Starts the operator without waiting for it to be ready.
    pub fn spawn(
        namespace: &str,
        operator_namespace: &str,
        extra_args: &[&str],
        log_filter: &str,
        kubeconfig: Option<&Path>,
        extra_env: &[(&str, &str)],
    ) -> Self {
        let env = env();
        let log_dir = Path::new(ROOT).join("target/test-logs");
        fs::create_dir_all(&log_dir).unwrap();
        let log_path = log_dir.join(format!("operator-{namespace}-{}.log", unique("p")));
        let log = fs::File::create(&log_path).unwrap();
        let port = free_port();
        let mut command = env.command(env!("CARGO_BIN_EXE_loginprofile-operator"));
        // Its own identity: an IAM user with only the shipped policies
        // (hack/operator_identity.py), unless the test gives another.
        for (name, from) in [
            ("AWS_ACCESS_KEY_ID", "LPO_OPERATOR_AWS_ACCESS_KEY_ID"),
            (
                "AWS_SECRET_ACCESS_KEY",
                "LPO_OPERATOR_AWS_SECRET_ACCESS_KEY",
            ),
        ] {
            command.env(name, &env.vars[from]);
        }
        command.envs(extra_env.iter().copied());
        if let Some(kubeconfig) = kubeconfig {
            command.env("KUBECONFIG", kubeconfig);
        }
        let child = command
            .args([
                "run",
                "--namespace",
                namespace,
                "--operator-namespace",
                operator_namespace,
                "--http-addr",
                &format!("127.0.0.1:{port}"),
                "--min-backoff",
                "500ms",
                "--max-backoff",
                "5s",
                "--iam-rate-limit",
                "100",
                // Tests delete as many LoginProfiles as they like; the
                // mass-deletion guard's own test sets a limit.
                "--deletion-limit",
                "0",
            ])
            .args(extra_args)
            .env("RUST_LOG", log_filter)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the operator binary starts");
        Self {
            child,
            log_path,
            http: format!("http://127.0.0.1:{port}"),
        }
    }

    pub fn logs(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn metrics(&self) -> String {
        let output = Command::new("curl")
            .args(["-sf", &format!("{}/metrics", self.http)])
            .output()
            .expect("curl runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The sum of a metric's samples (every label set), as /metrics serves it.
    pub fn metric_sum(&self, name: &str) -> f64 {
        self.metrics()
            .lines()
            .filter(|line| {
                line.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Sends a signal (`KILL`, `STOP`, `CONT`, ...) to the operator process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// The exit status, once the process has ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// SIGTERM, then wait for a graceful exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the operator did not stop within 20s of SIGTERM"
            );
            thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
