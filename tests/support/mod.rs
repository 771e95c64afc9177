//! Test support for the tests that run against the real environment
//! (hack/devenv.sh): starts it once per test run or reuses a running one,
//! gives each test its own namespace, IAM user names and operator process,
//! and removes what the test made. Results are read back the way a user
//! would: with the built kubectl and the AWS CLI.
#![allow(dead_code)] // each test binary uses a different part of this module

use std::{
    collections::HashMap,
    fs,
    io::Write,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::OnceLock,
    thread,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The environment variables of target/devenv/env (KUBECONFIG, AWS_*, PATH).
pub struct Env {
    pub vars: HashMap<String, String>,
}

static ENV: OnceLock<Env> = OnceLock::new();

/// The running environment, started by `hack/devenv.sh up` if it is not up.
/// The CRD is applied once per test binary.
pub fn env() -> &'static Env {
    ENV.get_or_init(|| {
        let status = Command::new("bash")
            .arg(format!("{ROOT}/hack/devenv.sh"))
            .arg("status")
            .stdout(Stdio::null())
            .status()
            .expect("bash runs");
        if !status.success() {
            let up = Command::new("bash")
                .arg(format!("{ROOT}/hack/devenv.sh"))
                .arg("up")
                .status()
                .expect("bash runs");
            assert!(up.success(), "hack/devenv.sh up failed");
        }
        let env = Env {
            vars: parse_env_file(&format!("{ROOT}/target/devenv/env")),
        };
        let crd = format!("{ROOT}/crds/loginprofile-operator.yaml");
        env.kubectl_ok(&["apply", "--server-side", "--force-conflicts", "-f", &crd]);
        env.kubectl_ok(&[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/loginprofiles.iam.loginprofile.dev",
            "crd/iamaccounts.iam.loginprofile.dev",
        ]);
        env.apply_ok(&default_account());
        env
    })
}

/// The label that opts a test namespace into the `default` IAMAccount, as
/// docs/tenancy.md suggests: `iam.loginprofile.dev/account=<IAMAccount>`.
pub const ACCOUNT_LABEL: &str = "iam.loginprofile.dev/account";

/// The static binary `make image-binary` builds, in the same Cargo target
/// directory as this test's own build (`CARGO_TARGET_DIR` or target/).
pub fn static_binary() -> String {
    let debug_binary = Path::new(env!("CARGO_BIN_EXE_loginprofile-operator"));
    let target_dir = debug_binary
        .parent()
        .and_then(|p| p.parent())
        .expect("<target>/debug/<binary>");
    target_dir
        .join("x86_64-unknown-linux-musl/release/loginprofile-operator")
        .display()
        .to_string()
}

/// The IAMAccount most tests use: the emulator's default account with the
/// environment's credentials, admitting every namespace labelled for it
/// (TestNamespace does) and every user.
fn default_account() -> String {
    json!({
        "apiVersion": "iam.loginprofile.dev/v1alpha1",
        "kind": "IAMAccount",
        "metadata": {"name": "default"},
        "spec": {
            "namespaceSelector": {"matchLabels": {ACCOUNT_LABEL: "default"}},
            "userNames": ["*"],
            "secretsManagerSecretIds": ["prod/*"],
            "allowAdoption": true,
        },
    })
    .to_string()
}

fn parse_env_file(path: &str) -> HashMap<String, String> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let mut vars = HashMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("export ") else {
            continue;
        };
        let (key, value) = rest.split_once('=').expect("KEY=value");
        let mut value = value.trim_matches('"').to_string();
        if key == "PATH" {
            value = value.replace("$PATH", &std::env::var("PATH").unwrap_or_default());
        }
        vars.insert(key.to_string(), value);
    }
    vars
}

impl Env {
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.envs(&self.vars);
        command
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.command("kubectl")
            .args(args)
            .output()
            .expect("kubectl runs")
    }

    /// kubectl that must succeed; returns stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        stdout_of(self.kubectl(args), &format!("kubectl {args:?}"))
    }

    /// kubectl apply with a manifest on stdin.
    pub fn apply(&self, manifest: &str) -> Output {
        let mut command = self.command("kubectl");
        command.args(["apply", "-f", "-"]);
        run_with_stdin(command, manifest)
    }

    pub fn apply_ok(&self, manifest: &str) {
        let output = self.apply(manifest);
        assert!(
            output.status.success(),
            "kubectl apply failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The AWS CLI against the emulator; `Err(stderr)` when it fails.
    pub fn aws(&self, args: &[&str]) -> Result<Value, String> {
        self.aws_with(args, &[])
    }

    /// The AWS CLI acting in AWS account `account` of the emulator, with
    /// credentials from STS AssumeRole of the role AWS Organizations puts
    /// in every account it creates (hack/moto_server.py).
    pub fn aws_in(&self, account: &str, args: &[&str]) -> Result<Value, String> {
        let assumed = self.aws_ok(&[
            "sts",
            "assume-role",
            "--role-arn",
            &format!("arn:aws:iam::{account}:role/OrganizationAccountAccessRole"),
            "--role-session-name",
            "tests",
        ]);
        let credentials = &assumed["Credentials"];
        let field = |name: &str| credentials[name].as_str().expect("credentials").to_string();
        let (key, secret, token) = (
            field("AccessKeyId"),
            field("SecretAccessKey"),
            field("SessionToken"),
        );
        self.aws_with(
            args,
            &[
                ("AWS_ACCESS_KEY_ID", &key),
                ("AWS_SECRET_ACCESS_KEY", &secret),
                ("AWS_SESSION_TOKEN", &token),
            ],
        )
    }

    fn aws_with(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Result<Value, String> {
        let output = self
            .command("aws")
            .envs(extra_env.iter().copied())
            .args(args)
            .args(["--output", "json"])
            .output()
            .expect("aws runs");
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        let text = String::from_utf8_lossy(&output.stdout);
        Ok(if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("aws prints JSON")
        })
    }

    pub fn aws_ok(&self, args: &[&str]) -> Value {
        self.aws(args)
            .unwrap_or_else(|e| panic!("aws {args:?} failed: {e}"))
    }

    pub fn iam_endpoint(&self) -> &str {
        &self.vars["AWS_ENDPOINT_URL"]
    }

    /// IAM calls the emulator received that name `user`, by action.
    pub fn iam_calls(&self, user: &str) -> HashMap<String, u64> {
        let output = Command::new("curl")
            .args([
                "-sf",
                &format!("{}/_lpo/calls?user={user}", self.iam_endpoint()),
            ])
            .output()
            .expect("curl runs");
        assert!(
            output.status.success(),
            "the emulator's call counter did not answer"
        );
        serde_json::from_slice(&output.stdout).expect("JSON")
    }

    /// Makes the emulator answer the next `count` calls of `action` for `user`
    /// with IAM error `code` (HTTP `status`).
    pub fn inject_fault(&self, action: &str, user: &str, code: &str, status: u16, count: u32) {
        self.fault(serde_json::json!({"action": action, "user": user, "code": code, "status": status, "count": count}));
    }

    /// Any fault the emulator knows (hack/moto_server.py: modes error, lost,
    /// hold, delay; patterns; rate; a time window).
    pub fn fault(&self, fault: Value) {
        self.hook("POST", "faults", Some(&fault));
    }

    /// Removes the faults injected for exactly `user`.
    pub fn clear_faults(&self, user: &str) {
        self.hook("DELETE", &format!("faults?user={user}"), None);
    }

    /// The calls the emulator holds (applied, answer not yet sent).
    pub fn held(&self) -> Vec<Value> {
        self.hook("GET", "held", None)["held"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Sends the answers of every held call.
    pub fn release_held(&self) {
        self.hook("POST", "release", None);
    }

    /// The writes IAM accepted (applied and answered with success) for `user`.
    pub fn accepted(&self, user: &str) -> HashMap<String, u64> {
        serde_json::from_value(self.hook("GET", &format!("calls?accepted=1&user={user}"), None))
            .expect("counts")
    }

    fn hook(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let mut curl = Command::new("curl");
        curl.args([
            "-sf",
            "-X",
            method,
            &format!("{}/_lpo/{path}", self.iam_endpoint()),
        ]);
        if let Some(body) = body {
            curl.args(["-d", &body.to_string()]);
        }
        let output = curl.output().expect("curl runs");
        assert!(output.status.success(), "the emulator refused /_lpo/{path}");
        serde_json::from_slice(&output.stdout).expect("the emulator answers JSON")
    }
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

/// A namespace for one test; deleted (with what is in it) when dropped.
pub struct TestNamespace {
    pub name: String,
}

impl TestNamespace {
    /// A namespace admitted by the `default` IAMAccount.
    pub fn new(prefix: &str) -> Self {
        Self::with_account(prefix, Some("default"))
    }

    /// A namespace labelled for the IAMAccount `account` (none: unlabelled).
    pub fn with_account(prefix: &str, account: Option<&str>) -> Self {
        let name = unique(prefix);
        env().kubectl_ok(&["create", "namespace", &name]);
        if let Some(account) = account {
            env().kubectl_ok(&[
                "label",
                "namespace",
                &name,
                &format!("{ACCOUNT_LABEL}={account}"),
            ]);
        }
        Self { name }
    }
}

impl Drop for TestNamespace {
    /// Removes the namespace without depending on an operator: finalizers
    /// left on LoginProfiles (the test's operator may be gone) would keep
    /// the namespace terminating forever. IAM state is cleaned by TestUsers.
    fn drop(&mut self) {
        let env = env();
        let names = env.kubectl(&["get", "loginprofiles", "-n", &self.name, "-o", "name"]);
        for name in String::from_utf8_lossy(&names.stdout).lines() {
            let _ = env.kubectl(&[
                "patch",
                name,
                "-n",
                &self.name,
                "--type=merge",
                "-p",
                r#"{"metadata":{"finalizers":null}}"#,
            ]);
        }
        let _ = env.kubectl(&["delete", "namespace", &self.name, "--wait=false"]);
    }
}

/// IAM users made by one test; deleted (login profile first) when dropped.
#[derive(Default)]
pub struct TestUsers {
    names: Vec<String>,
    bulk: Vec<String>,
}

/// Runs one boto3 IAM call (`create_user`, `delete_user`, ...) for each
/// name, in one Python process of the emulator's venv; errors are ignored
/// (cleanup of what may not exist).
fn bulk_users(call: &str, names: &[String]) {
    let script = format!(
        "import boto3, sys\n\
         iam = boto3.client('iam')\n\
         for name in sys.stdin.read().split():\n\
         \x20   try:\n\
         \x20       if '{call}' == 'delete_user':\n\
         \x20           try: iam.delete_login_profile(UserName=name)\n\
         \x20           except Exception: pass\n\
         \x20       iam.{call}(UserName=name)\n\
         \x20   except Exception as e:\n\
         \x20       if '{call}' != 'delete_user': raise\n"
    );
    let mut python = env().command("python");
    python.args(["-c", &script]);
    let output = run_with_stdin(python, &names.join("\n"));
    assert!(
        output.status.success(),
        "boto3 {call}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl TestUsers {
    /// Creates an IAM user with a unique name and returns the name.
    pub fn create(&mut self, prefix: &str) -> String {
        let name = self.reserve(prefix);
        env().aws_ok(&["iam", "create-user", "--user-name", &name]);
        name
    }

    /// Creates `n` IAM users named `<prefix>-<i>` (one process, so hundreds
    /// take seconds, not minutes) and returns the names.
    pub fn create_many(&mut self, prefix: &str, n: usize) -> Vec<String> {
        let names: Vec<String> = (0..n).map(|i| format!("{prefix}-{i}")).collect();
        bulk_users("create_user", &names);
        self.bulk.extend(names.iter().cloned());
        names
    }

    /// A unique user name that is cleaned up, without creating the user.
    pub fn reserve(&mut self, prefix: &str) -> String {
        let name = unique(prefix);
        self.names.push(name.clone());
        name
    }
}

impl Drop for TestUsers {
    fn drop(&mut self) {
        if !self.bulk.is_empty() {
            bulk_users("delete_user", &self.bulk);
        }
        for name in &self.names {
            let _ = env().aws(&["iam", "delete-login-profile", "--user-name", name]);
            let _ = env().aws(&["iam", "delete-user", "--user-name", name]);
        }
    }
}

/// A 12-digit AWS account id no other test run uses (the emulator keeps
/// every account it has seen until it restarts).
pub fn unique_account_id() -> String {
    let digits: String = unique("").chars().filter(char::is_ascii_digit).collect();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let id = format!("9{nanos:09}{digits}00");
    id[..12].to_string()
}

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
        let operator = Self::spawn(
            namespace,
            operator_namespace,
            extra_args,
            log_filter,
            kubeconfig,
            &[],
        );
        wait_until("the operator to be ready", Duration::from_secs(30), || {
            operator.is_ready()
        });
        operator
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

/// A LoginProfile manifest.
pub fn login_profile(namespace: &str, name: &str, spec: Value) -> String {
    serde_json::json!({
        "apiVersion": "iam.loginprofile.dev/v1alpha1",
        "kind": "LoginProfile",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    })
    .to_string()
}

/// A Secret manifest with string data.
pub fn secret(namespace: &str, name: &str, data: &[(&str, &str)]) -> String {
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect();
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": data,
    })
    .to_string()
}

/// The LoginProfile as kubectl shows it.
pub fn get_lp(namespace: &str, name: &str) -> Value {
    serde_json::from_str(&env().kubectl_ok(&[
        "get",
        "loginprofile",
        name,
        "-n",
        namespace,
        "-o",
        "json",
    ]))
    .unwrap()
}

/// The Ready condition (status, reason, message) once the operator has
/// written one.
pub fn ready(lp: &Value) -> Option<(String, String, String)> {
    lp["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_string(),
                c["reason"].as_str().unwrap_or_default().to_string(),
                c["message"].as_str().unwrap_or_default().to_string(),
            )
        })
}

/// Whether the object's status has condition `type_` with status True.
pub fn condition_true(lp: &Value, type_: &str) -> bool {
    lp["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter()
            .any(|c| c["type"] == type_ && c["status"] == "True")
    })
}

/// Waits until Ready has the given status and reason; returns the object.
pub fn wait_ready_reason(
    namespace: &str,
    name: &str,
    status: &str,
    reason: &str,
    timeout: Duration,
) -> Value {
    let mut last = None;
    let deadline = Instant::now() + timeout;
    loop {
        let lp = get_lp(namespace, name);
        let now = ready(&lp);
        if now
            .as_ref()
            .is_some_and(|(s, r, _)| s == status && r == reason)
        {
            return lp;
        }
        last = now.or(last);
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {namespace}/{name} Ready={status} reason {reason}; last seen {last:?}"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

/// Events of one object, as `kubectl get events` shows them.
/// The operator's Kubernetes write requests on `name` (and its Events) in
/// `namespace`, as the API server's audit log recorded them (hack/audit-policy.yaml),
/// told apart by the operator's User-Agent: "verb resource[/subresource]" -> count.
pub fn operator_writes(namespace: &str, name: &str) -> HashMap<String, u64> {
    let mut requests = operator_requests(namespace, name);
    requests.retain(|key, _| !key.starts_with("get "));
    requests
}

/// Like [`operator_writes`], with the operator's reads of LoginProfiles
/// (the only reads the audit policy logs) counted too, under "get loginprofiles".
pub fn operator_requests(namespace: &str, name: &str) -> HashMap<String, u64> {
    operator_audit(namespace, |object| {
        object.as_str().is_some_and(|n| {
            n == name
                || n.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
    })
}

/// The operator's requests on any object of `namespace`, as for [`operator_requests`].
pub fn operator_requests_in(namespace: &str) -> HashMap<String, u64> {
    operator_audit(namespace, |_| true)
}

/// The operator's requests in `namespace` on objects whose name `named`
/// keeps, from the API server's audit log: "verb resource[/subresource]" -> count.
fn operator_audit(namespace: &str, named: impl Fn(&Value) -> bool) -> HashMap<String, u64> {
    let path = env().vars.get("LPO_AUDIT_LOG").expect(
        "target/devenv/env has no LPO_AUDIT_LOG: the environment predates the audit log; \
         restart it (make devenv-down devenv-up)",
    );
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let mut requests = HashMap::new();
    // The last line may still be being written.
    let complete = &text[..text.rfind('\n').map_or(0, |end| end + 1)];
    for line in complete.lines() {
        let event: Value = serde_json::from_str(line).expect("the audit log is JSON lines");
        let object = &event["objectRef"];
        let ours = event["userAgent"]
            .as_str()
            .is_some_and(|agent| agent.starts_with("loginprofile-operator/"));
        if ours && named(&object["name"]) && object["namespace"] == namespace {
            let mut key = format!(
                "{} {}",
                event["verb"].as_str().unwrap_or("?"),
                object["resource"].as_str().unwrap_or("?")
            );
            if let Some(sub) = object["subresource"].as_str() {
                key = format!("{key}/{sub}");
            }
            *requests.entry(key).or_insert(0) += 1;
        }
    }
    requests
}

pub fn events(namespace: &str, name: &str) -> Vec<Value> {
    let text = env().kubectl_ok(&[
        "get",
        "events",
        "-n",
        namespace,
        "--field-selector",
        &format!("involvedObject.name={name}"),
        "-o",
        "json",
    ]);
    let list: Value = serde_json::from_str(&text).unwrap();
    list["items"].as_array().cloned().unwrap_or_default()
}

/// How long a LoginProfile may take to converge in a test.
pub const CONVERGE: Duration = Duration::from_secs(30);

/// A namespace and an operator watching it, for one test.
pub struct Fixture {
    pub ns: TestNamespace,
    pub operator: Operator,
}

impl Fixture {
    pub fn new(prefix: &str, operator_args: &[&str]) -> Self {
        let ns = TestNamespace::new(prefix);
        let operator = Operator::start(&ns.name, operator_args);
        Self { ns, operator }
    }

    pub fn ns(&self) -> &str {
        &self.ns.name
    }

    /// A Secret with `password` under key "password" and a LoginProfile for `user`.
    pub fn apply_pair(&self, name: &str, user: &str, password: &str, extra_spec: Value) {
        env().apply_ok(&secret(self.ns(), name, &[("password", password)]));
        let mut spec = json!({"userName": user, "passwordSecretRef": {"name": name}});
        spec.as_object_mut()
            .unwrap()
            .extend(extra_spec.as_object().cloned().unwrap_or_default());
        env().apply_ok(&login_profile(self.ns(), name, spec));
    }

    pub fn set_password(&self, name: &str, password: &str) {
        env().apply_ok(&secret(self.ns(), name, &[("password", password)]));
    }
}

/// An AWS Secrets Manager secret `id` whose SecretString is `value`.
pub fn create_secrets_manager_secret(id: &str, value: &str) {
    env().aws_ok(&[
        "secretsmanager",
        "create-secret",
        "--name",
        id,
        "--secret-string",
        value,
    ]);
}

pub fn iam_profile(user: &str) -> Result<Value, String> {
    env().aws(&["iam", "get-login-profile", "--user-name", user])
}

pub fn calls(user: &str, action: &str) -> u64 {
    env().iam_calls(user).get(action).copied().unwrap_or(0)
}

pub fn iam_writes(user: &str) -> u64 {
    [
        "CreateLoginProfile",
        "UpdateLoginProfile",
        "DeleteLoginProfile",
    ]
    .iter()
    .map(|a| calls(user, a))
    .sum()
}

pub fn status_str<'a>(lp: &'a Value, field: &str) -> &'a str {
    lp["status"][field].as_str().unwrap_or_default()
}

pub fn seconds(time: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(time)
        .unwrap()
        .timestamp()
}

/// ChangePassword as the IAM user itself, with an access key of its own (the
/// way the user changes the password at sign-in). The key is deleted after.
pub fn change_password_as_user(user: &str, old: &str, new: &str) -> Result<(), String> {
    let env = env();
    let key = env.aws_ok(&["iam", "create-access-key", "--user-name", user]);
    let key_id = key["AccessKey"]["AccessKeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let output = env
        .command("aws")
        .args([
            "iam",
            "change-password",
            "--old-password",
            old,
            "--new-password",
            new,
        ])
        .env("AWS_ACCESS_KEY_ID", &key_id)
        .env(
            "AWS_SECRET_ACCESS_KEY",
            key["AccessKey"]["SecretAccessKey"].as_str().unwrap(),
        )
        .output()
        .expect("aws runs");
    env.aws_ok(&[
        "iam",
        "delete-access-key",
        "--user-name",
        user,
        "--access-key-id",
        &key_id,
    ]);
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// Checks that every user can sign in with its Secret's password (and
/// change it, as at a first sign-in), in one process for hundreds of users.
pub fn sign_in_all(passwords: &HashMap<String, String>) {
    let script = "import boto3, json, os, sys\n\
                  iam = boto3.client('iam')\n\
                  failed = []\n\
                  for user, password in json.load(sys.stdin).items():\n\
                  \x20   key = iam.create_access_key(UserName=user)['AccessKey']\n\
                  \x20   as_user = boto3.client('iam', aws_access_key_id=key['AccessKeyId'],\n\
                  \x20       aws_secret_access_key=key['SecretAccessKey'])\n\
                  \x20   try: as_user.change_password(OldPassword=password, NewPassword=password + 'x')\n\
                  \x20   except Exception: failed.append(user)\n\
                  \x20   iam.delete_access_key(UserName=user, AccessKeyId=key['AccessKeyId'])\n\
                  print(json.dumps(failed))\n";
    let mut python = env().command("python");
    python.args(["-c", script]);
    let output = run_with_stdin(python, &serde_json::to_string(passwords).unwrap());
    let failed: Vec<String> = serde_json::from_slice(&stdout_of(output, "sign-in").into_bytes())
        .expect("the list of users who could not sign in");
    assert!(
        failed.is_empty(),
        "IAM does not hold the Secret's password for {failed:?}"
    );
}

/// Applies a Secret and a LoginProfile `lp-<i>` for each of `users`, in one
/// kubectl call, and returns each user's password.
pub fn apply_many(namespace: &str, users: &[String], tag: &str) -> HashMap<String, String> {
    let mut manifest = String::new();
    let mut passwords = HashMap::new();
    for (i, user) in users.iter().enumerate() {
        let password = strong_password(tag);
        let name = format!("lp-{i}");
        manifest += &secret(namespace, &name, &[("password", &password)]);
        manifest += "\n---\n";
        manifest += &login_profile(
            namespace,
            &name,
            json!({"userName": user, "passwordSecretRef": {"name": name}}),
        );
        manifest += "\n---\n";
        passwords.insert(user.clone(), password);
    }
    env().apply_ok(&manifest);
    passwords
}

/// The LoginProfiles in `namespace`; none while the API server is away.
pub fn list_lps(namespace: &str) -> Vec<Value> {
    let output = env().kubectl(&["get", "lp", "-n", namespace, "-o", "json"]);
    serde_json::from_slice::<Value>(&output.stdout)
        .ok()
        .and_then(|list| list["items"].as_array().cloned())
        .unwrap_or_default()
}

/// Waits until `namespace` holds exactly `n` LoginProfiles, all Ready, and
/// returns them.
pub fn wait_all_ready(namespace: &str, n: usize, timeout: Duration) -> Vec<Value> {
    wait_for(&format!("{n} LoginProfiles Ready"), timeout, || {
        let items = list_lps(namespace);
        let ready = items
            .iter()
            .filter(|lp| ready(lp).is_some_and(|(status, _, _)| status == "True"))
            .count();
        (items.len() == n && ready == n).then_some(items)
    })
}

/// Sets the account password policy for the life of the guard (the policy is
/// account-wide: every test password is 20+ characters of all four classes,
/// so tests running meanwhile are not affected).
pub struct AccountPolicy;

impl AccountPolicy {
    pub fn set(args: &[&str]) -> Self {
        let mut all = vec!["iam", "update-account-password-policy"];
        all.extend_from_slice(args);
        env().aws_ok(&all);
        Self
    }
}

impl Drop for AccountPolicy {
    fn drop(&mut self) {
        let _ = env().aws(&["iam", "delete-account-password-policy"]);
    }
}

/// A kubeconfig with a token of ServiceAccount `name` in `namespace` (from
/// the TokenRequest API): requests made with it have exactly that
/// ServiceAccount's rights.
pub fn token_kubeconfig(name: &str, namespace: &str) -> PathBuf {
    let token = env().kubectl_ok(&["create", "token", name, "-n", namespace, "--duration=1h"]);
    let server = env().kubectl_ok(&[
        "config",
        "view",
        "--minify",
        "-o",
        "jsonpath={.clusters[0].cluster.server}",
    ]);
    let kubeconfig =
        Path::new(ROOT).join(format!("target/test-logs/{namespace}-{name}-kubeconfig"));
    fs::create_dir_all(kubeconfig.parent().unwrap()).unwrap();
    fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: {server}, certificate-authority: {ROOT}/target/devenv/pki/ca.crt}}}}]\n\
             users: [{{name: sa, user: {{token: {}}}}}]\ncontexts: [{{name: c, context: {{cluster: c, user: sa}}}}]\ncurrent-context: c\n",
            token.trim()
        ),
    )
    .unwrap();
    kubeconfig
}

/// A tenant of one namespace, acting with its own ServiceAccount token and
/// the rights the chart's aggregated `edit` role gives there: LoginProfiles
/// (not their status) and Secrets.
pub struct Tenant {
    kubeconfig: PathBuf,
}

impl Tenant {
    pub fn new(namespace: &str) -> Self {
        let rules = json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "tenant", "namespace": namespace},
            "rules": [
                {"apiGroups": ["iam.loginprofile.dev"], "resources": ["loginprofiles"],
                 "verbs": ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]},
                {"apiGroups": [""], "resources": ["secrets"],
                 "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
            ],
        });
        env().apply_ok(&rules.to_string());
        env().kubectl_ok(&["create", "serviceaccount", "tenant", "-n", namespace]);
        env().kubectl_ok(&[
            "create",
            "rolebinding",
            "tenant",
            "--role=tenant",
            &format!("--serviceaccount={namespace}:tenant"),
            "-n",
            namespace,
        ]);
        Self::with_kubeconfig(token_kubeconfig("tenant", namespace))
    }

    /// A tenant that authenticates with `kubeconfig`.
    pub fn with_kubeconfig(kubeconfig: PathBuf) -> Self {
        Self { kubeconfig }
    }

    /// kubectl as the tenant.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = env().command("kubectl");
        command
            .args(["--kubeconfig", self.kubeconfig.to_str().unwrap()])
            .args(args)
            .env_remove("KUBECONFIG");
        match stdin {
            Some(input) => run_with_stdin(command, input),
            None => command.output().unwrap(),
        }
    }

    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        stdout_of(
            self.kubectl(args, None),
            &format!("kubectl as the tenant {args:?}"),
        )
    }

    /// `kubectl apply` as the tenant.
    pub fn apply_ok(&self, manifest: &str) {
        stdout_of(
            self.kubectl(&["apply", "-f", "-"], Some(manifest)),
            "kubectl apply as the tenant",
        );
    }

    /// A Secret `name` holding `password` and a LoginProfile `name` for
    /// `user` reading it, applied as the tenant.
    pub fn apply_pair(&self, namespace: &str, name: &str, user: &str, password: &str) {
        self.apply_ok(&secret(namespace, name, &[("password", password)]));
        self.apply_ok(&login_profile(
            namespace,
            name,
            json!({"userName": user, "passwordSecretRef": {"name": name}}),
        ));
    }
}
