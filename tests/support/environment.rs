//! The environment (hack/devenv.sh): started once per test run or reused,
//! its variables, kubectl and the AWS CLI as a user runs them, the
//! emulator's test hooks, and a namespace per test.

use std::{
    collections::HashMap,
    fs,
    path::Path,
    process::{Command, Output, Stdio},
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use super::*;

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The environment variables of target/devenv/env (KUBECONFIG, AWS_*, PATH).
pub struct Env {
    pub vars: HashMap<String, String>,
    /// The tests' own role sessions by AWS account, and when each was made.
    sessions: Mutex<HashMap<String, (Value, Instant)>>,
}

/// How long a test process reuses its session in an account: well within
/// the hour STS gives it, and one AssumeRole per account instead of one per
/// AWS CLI call (each call is half a second of a CPU).
const SESSION_REUSE: Duration = Duration::from_secs(20 * 60);

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
            sessions: Mutex::default(),
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
        // Server-side: test binaries start side by side, and two
        // client-side applies of a missing object race to create it.
        let mut apply = env.command("kubectl");
        apply.args(["apply", "--server-side", "--force-conflicts", "-f", "-"]);
        stdout_of(
            run_with_stdin(apply, &default_account()),
            "kubectl apply --server-side (the IAMAccount default)",
        );
        env
    })
}

/// The label that opts a test namespace into the `default` IAMAccount, as
/// docs/tenancy.md suggests: `iam.loginprofile.dev/account=<IAMAccount>`.
pub const ACCOUNT_LABEL: &str = "iam.loginprofile.dev/account";

/// The static binary `make test` builds for the image and node tests
/// (`LPO_STATIC_PROFILE=static-test hack/image-binary.sh`: the release
/// binary unoptimized), in the same Cargo target directory as this test's
/// own build (`CARGO_TARGET_DIR` or target/).
pub fn static_binary() -> String {
    let debug_binary = Path::new(env!("CARGO_BIN_EXE_loginprofile-operator"));
    let target_dir = debug_binary
        .parent()
        .and_then(|p| p.parent())
        .expect("<target>/debug/<binary>");
    target_dir
        .join("x86_64-unknown-linux-musl/static-test/loginprofile-operator")
        .display()
        .to_string()
}

/// The operator's image, rebuilt from the current static binary and
/// imported into the node (by tag and by digest) once per test run.
pub fn image_loaded() {
    static LOADED: OnceLock<()> = OnceLock::new();
    LOADED.get_or_init(|| {
        let node = env().vars.get("LPO_NODE").cloned().unwrap_or_default();
        assert!(
            !node.is_empty(),
            "the dev environment runs without its node (LPO_NODE=0?): restart it with `make devenv-down devenv-up`"
        );
        let binary = static_binary();
        assert!(
            Path::new(&binary).exists(),
            "{binary} is missing: `make image-binary` builds it (`make test` does)"
        );
        let output = env()
            .command("bash")
            .args([&format!("{ROOT}/hack/devenv.sh"), "load-image", &binary])
            .output()
            .unwrap();
        stdout_of(output, "hack/devenv.sh load-image");
    });
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
        let credentials = self.session_in(account);
        self.aws_as(&credentials, args)
    }

    /// The credentials of this test process's session in `account`.
    fn session_in(&self, account: &str) -> Value {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((credentials, made)) = sessions.get(account)
            && made.elapsed() < SESSION_REUSE
        {
            return credentials.clone();
        }
        let assumed = self.aws_ok(&[
            "sts",
            "assume-role",
            "--role-arn",
            &format!("arn:aws:iam::{account}:role/OrganizationAccountAccessRole"),
            "--role-session-name",
            "tests",
        ]);
        let credentials = assumed["Credentials"].clone();
        sessions.insert(account.to_string(), (credentials.clone(), Instant::now()));
        credentials
    }

    /// The AWS CLI with the credentials STS answered (`Credentials` of
    /// AssumeRole or AssumeRoot).
    pub fn aws_as(&self, credentials: &Value, args: &[&str]) -> Result<Value, String> {
        let field = |name: &str| credentials[name].as_str().expect("credentials").to_string();
        self.aws_with(
            args,
            &[
                ("AWS_ACCESS_KEY_ID", &field("AccessKeyId")),
                ("AWS_SECRET_ACCESS_KEY", &field("SecretAccessKey")),
                ("AWS_SESSION_TOKEN", &field("SessionToken")),
            ],
        )
    }

    /// Root's credentials in `account` as the emulator holds them
    /// (hack/root_access.py), after applying `change` (`{}`: unchanged).
    pub fn root_state(&self, account: &str, change: Value) -> Value {
        let mut body = change;
        body["account"] = Value::from(account);
        self.hook("POST", "root", Some(&body))
    }

    /// Every call made with root session credentials: account, action and
    /// the session's task policy.
    pub fn root_calls(&self) -> Vec<Value> {
        self.hook("GET", "root-calls", None)["calls"]
            .as_array()
            .cloned()
            .unwrap_or_default()
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

    /// Waits until the emulator holds a call of `action` for `user`: IAM
    /// has applied it and the caller has not heard back.
    pub fn wait_held(&self, action: &str, user: &str) {
        wait_until(
            &format!("IAM to hold {action} for {user}"),
            CONVERGE,
            || {
                self.held()
                    .iter()
                    .any(|call| call["action"] == action && call["user"] == user)
            },
        );
    }

    /// Sends the answers of the calls held for `user` (other tests hold
    /// their own at the same time).
    pub fn release_held(&self, user: &str) {
        self.hook("POST", &format!("release?user={user}"), None);
    }

    /// Moves AWS account `account`'s clock in the emulator forward by `seconds`
    /// (password changes, sign-ins and reports after it carry the later time).
    pub fn advance_clock(&self, account: &str, seconds: u64) {
        self.hook(
            "POST",
            "clock",
            Some(&serde_json::json!({"account": account, "advance_seconds": seconds})),
        );
    }

    /// Records a console sign-in of `user` in `account` (the credential
    /// report's password_last_used), at that account's clock.
    pub fn record_sign_in(&self, account: &str, user: &str) {
        self.hook(
            "POST",
            "sign-in",
            Some(&serde_json::json!({"account": account, "user": user})),
        );
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
        let names = String::from_utf8_lossy(&names.stdout);
        let names: Vec<&str> = names.lines().collect();
        // One kubectl per hundred objects, not one per object.
        for chunk in names.chunks(100) {
            let mut args = vec!["patch", "-n", &self.name, "--type=merge"];
            args.extend(["-p", r#"{"metadata":{"finalizers":null}}"#]);
            args.extend(chunk);
            let _ = env.kubectl(&args);
        }
        let _ = env.kubectl(&["delete", "namespace", &self.name, "--wait=false"]);
    }
}
