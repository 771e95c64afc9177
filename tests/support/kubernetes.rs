//! The Kubernetes side: manifests, reading LoginProfiles back, waiting for
//! conditions, the operator's requests from the audit log, fixtures, and a
//! tenant acting with its own ServiceAccount token.

use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
    process::Output,
    thread,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use super::*;

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
    condition(lp, "Ready")
}

/// Condition `type_` (status, reason, message), if status has it.
pub fn condition(lp: &Value, type_: &str) -> Option<(String, String, String)> {
    lp["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
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
    let mut requests = HashMap::new();
    for event in operator_audit_events(namespace) {
        let object = &event["objectRef"];
        if named(&object["name"]) {
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

/// The HTTP codes the API server answered the operator's status writes of
/// LoginProfile `name` in `namespace` with, in order (the audit log).
pub fn operator_status_write_codes(namespace: &str, name: &str) -> Vec<i64> {
    operator_audit_events(namespace)
        .into_iter()
        .filter(|event| {
            event["objectRef"]["name"] == name
                && event["objectRef"]["resource"] == "loginprofiles"
                && event["objectRef"]["subresource"] == "status"
                && event["verb"] == "patch"
        })
        .filter_map(|event| event["responseStatus"]["code"].as_i64())
        .collect()
}

/// The request URIs of the operator's LoginProfile lists in `namespace`
/// (its watches' listings), from the API server's audit log.
pub fn operator_profile_lists(namespace: &str) -> Vec<String> {
    operator_audit_events(namespace)
        .into_iter()
        .filter(|event| {
            event["verb"] == "list" && event["objectRef"]["resource"] == "loginprofiles"
        })
        .filter_map(|event| event["requestURI"].as_str().map(str::to_string))
        .collect()
}

/// The audit log's events of the operator's requests (told apart by its
/// User-Agent) in `namespace`.
fn operator_audit_events(namespace: &str) -> Vec<Value> {
    let path = env().vars.get("LPO_AUDIT_LOG").expect(
        "target/devenv/env has no LPO_AUDIT_LOG: the environment predates the audit log; \
         restart it (make devenv-down devenv-up)",
    );
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    // The last line may still be being written.
    let complete = &text[..text.rfind('\n').map_or(0, |end| end + 1)];
    complete
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("the audit log is JSON lines"))
        .filter(|event| {
            event["userAgent"]
                .as_str()
                .is_some_and(|agent| agent.starts_with("loginprofile-operator/"))
                && event["objectRef"]["namespace"] == namespace
        })
        .collect()
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

pub fn status_str<'a>(lp: &'a Value, field: &str) -> &'a str {
    lp["status"][field].as_str().unwrap_or_default()
}

pub fn seconds(time: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(time)
        .unwrap()
        .timestamp()
}

/// Applies a Secret and a LoginProfile `lp-<i>` for each of `users`, in one
/// kubectl call, and returns each user's password.
pub fn apply_many(namespace: &str, users: &[String], tag: &str) -> HashMap<String, String> {
    apply_many_with(namespace, users, tag, json!({}))
}

/// [`apply_many`] with `extra_spec` in every LoginProfile's spec.
pub fn apply_many_with(
    namespace: &str,
    users: &[String],
    tag: &str,
    extra_spec: Value,
) -> HashMap<String, String> {
    let mut manifest = String::new();
    let mut passwords = HashMap::new();
    for (i, user) in users.iter().enumerate() {
        let password = strong_password(tag);
        let name = format!("lp-{i}");
        manifest += &secret(namespace, &name, &[("password", &password)]);
        manifest += "\n---\n";
        let mut spec = json!({"userName": user, "passwordSecretRef": {"name": name}});
        spec.as_object_mut()
            .unwrap()
            .extend(extra_spec.as_object().cloned().unwrap_or_default());
        manifest += &login_profile(namespace, &name, spec);
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

/// An IAMAccount manifest (cluster-scoped).
pub fn iam_account(name: &str, spec: Value) -> String {
    json!({
        "apiVersion": "iam.loginprofile.dev/v1alpha1",
        "kind": "IAMAccount",
        "metadata": {"name": name},
        "spec": spec,
    })
    .to_string()
}

pub fn get_account(name: &str) -> Value {
    serde_json::from_str(&env().kubectl_ok(&["get", "iamaccount", name, "-o", "json"])).unwrap()
}

pub fn wait_account_ready(name: &str, status: &str, reason: &str) -> Value {
    wait_for(
        &format!("IAMAccount {name} Ready={status} {reason}"),
        CONVERGE,
        || {
            let account = get_account(name);
            let ready = ready(&account)?;
            (ready.0 == status && ready.1 == reason).then_some(account)
        },
    )
}

/// Deletes the IAMAccounts a test made (their finalizer is removed, so a
/// test that failed half-way leaves nothing stuck).
pub struct TestAccounts(pub Vec<String>);

impl Drop for TestAccounts {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = env().kubectl(&[
                "patch",
                "iamaccount",
                name,
                "--type=merge",
                "-p",
                r#"{"metadata":{"finalizers":null}}"#,
            ]);
            let _ = env().kubectl(&["delete", "iamaccount", name, "--wait=false"]);
        }
    }
}
