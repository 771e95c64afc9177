//! The oldest Kubernetes the chart supports (`kubeVersion` in Chart.yaml,
//! the supported-versions table of docs/install.md): its kube-apiserver,
//! built by hack/tools.sh with the other tools, runs beside the
//! environment's on the same etcd under a key prefix of its own, so it is a
//! cluster of its own. There the CRDs are accepted and their validation
//! rules answer with the field and reason they name (which that version
//! introduced), and the operator converges a LoginProfile and deletes its
//! login profile with it, read back with kubectl and the AWS CLI.

mod support;

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Child, Command},
};

use serde_json::{Value, json};
use support::*;

/// The minor version the API server must report: the one Chart.yaml's
/// kubeVersion names.
const OLDEST_MINOR: &str = "28";

/// A kube-apiserver of the oldest supported version, with a kubeconfig for
/// the environment's administrator; stopped when dropped.
struct OldestApiServer {
    child: Child,
    kubeconfig: PathBuf,
}

impl OldestApiServer {
    fn start() -> Self {
        let env = env();
        let binary = &env.vars["LPO_OLDEST_KUBE_APISERVER"];
        let pki = |file: &str| format!("{}/{file}", env.vars["LPO_PKI"]);
        let dir = Path::new(ROOT)
            .join("target/test-logs")
            .join(unique("oldest"));
        fs::create_dir_all(&dir).unwrap();
        let port = free_port();
        let log = fs::File::create(dir.join("kube-apiserver.log")).unwrap();
        let child = Command::new(binary)
            .args(["--bind-address", "127.0.0.1", "--advertise-address"])
            .args(["127.0.0.1", "--secure-port", &port.to_string()])
            .args(["--etcd-servers", &env.vars["LPO_ETCD"]])
            // Its own keys in the shared etcd: nothing of the other
            // cluster's is seen or touched.
            .args(["--etcd-prefix", &format!("/{}", unique("oldest"))])
            .args(["--etcd-cafile", &pki("ca.crt")])
            .args(["--etcd-certfile", &pki("etcd-client.crt")])
            .args(["--etcd-keyfile", &pki("etcd-client.key")])
            .args(["--tls-cert-file", &pki("serving.crt")])
            .args(["--tls-private-key-file", &pki("serving.key")])
            .args(["--client-ca-file", &pki("ca.crt")])
            .args(["--authorization-mode", "RBAC"])
            .args(["--service-account-issuer", "https://kubernetes.default.svc"])
            .args(["--service-account-key-file", &pki("sa.pub")])
            .args(["--service-account-signing-key-file", &pki("sa.key")])
            .args(["--api-audiences", "https://kubernetes.default.svc"])
            .args(["--service-cluster-ip-range", "10.96.0.0/16"])
            .arg(format!("--cert-dir={}", dir.join("certs").display()))
            .args(["--enable-priority-and-fairness=false", "--v", "1"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{binary} starts: {e}"));
        let kubeconfig = dir.join("kubeconfig");
        let config = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "oldest", "cluster": {
                "server": format!("https://127.0.0.1:{port}"),
                "certificate-authority": pki("ca.crt"),
            }}],
            "users": [{"name": "admin", "user": {
                "client-certificate": pki("admin.crt"),
                "client-key": pki("admin.key"),
            }}],
            "contexts": [{"name": "oldest", "context": {"cluster": "oldest", "user": "admin"}}],
            "current-context": "oldest",
        });
        fs::write(&kubeconfig, config.to_string()).unwrap();
        let server = Self { child, kubeconfig };
        wait_until("the oldest kube-apiserver to be ready", CONVERGE, || {
            server.kubectl(&["get", "--raw", "/readyz"]).is_ok()
        });
        server
    }

    /// kubectl against this API server: its output, or what it printed to
    /// stderr.
    fn kubectl(&self, args: &[&str]) -> Result<String, String> {
        let output = env()
            .command("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("kubectl runs");
        match output.status.success() {
            true => Ok(String::from_utf8_lossy(&output.stdout).into_owned()),
            false => Err(String::from_utf8_lossy(&output.stderr).into_owned()),
        }
    }

    fn kubectl_ok(&self, args: &[&str]) -> String {
        self.kubectl(args)
            .unwrap_or_else(|e| panic!("kubectl {args:?} on the oldest API server: {e}"))
    }

    fn apply(&self, manifest: &str) -> Result<String, String> {
        let mut kubectl = env().command("kubectl");
        kubectl.arg("--kubeconfig").arg(&self.kubeconfig).args([
            "apply",
            "--server-side",
            "-f",
            "-",
        ]);
        let output = run_with_stdin(kubectl, manifest);
        match output.status.success() {
            true => Ok(String::from_utf8_lossy(&output.stdout).into_owned()),
            false => Err(String::from_utf8_lossy(&output.stderr).into_owned()),
        }
    }

    fn get_lp(&self, namespace: &str, name: &str) -> Option<Value> {
        let text = self
            .kubectl(&["get", "loginprofile", name, "-n", namespace, "-o", "json"])
            .ok()?;
        serde_json::from_str(&text).ok()
    }
}

impl Drop for OldestApiServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_oldest_supported_kubernetes_takes_the_crds_and_the_operator_converges_there() {
    let chart = fs::read_to_string(format!("{ROOT}/charts/loginprofile-operator/Chart.yaml"))
        .expect("Chart.yaml");
    assert!(
        chart.contains(&format!("kubeVersion: \">=1.{OLDEST_MINOR}.0-0\"")),
        "the chart's kubeVersion names 1.{OLDEST_MINOR}: tests/oldest_kubernetes.rs and \
         OLDEST_KUBE_VERSION in hack/tools.sh follow it"
    );
    let server = OldestApiServer::start();
    let version: Value = serde_json::from_str(&server.kubectl_ok(&["version", "-o", "json"]))
        .expect("kubectl version answers JSON");
    assert_eq!(
        (
            version["serverVersion"]["major"].as_str(),
            version["serverVersion"]["minor"].as_str()
        ),
        (Some("1"), Some(OLDEST_MINOR)),
        "{version}"
    );

    // The CRDs, as `make crds` writes them and the chart ships them.
    let crds = fs::read_to_string(format!("{ROOT}/crds/loginprofile-operator.yaml")).unwrap();
    server.apply(&crds).expect("the CRDs are accepted");
    server.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/loginprofiles.iam.loginprofile.dev",
        "crd/iamaccounts.iam.loginprofile.dev",
        "crd/rootloginprofiles.iam.loginprofile.dev",
    ]);

    let ns = unique("oldest");
    server.kubectl_ok(&["create", "namespace", &ns]);
    server.kubectl_ok(&[
        "label",
        "namespace",
        &ns,
        &format!("{ACCOUNT_LABEL}=default"),
    ]);
    server
        .apply(&iam_account(
            "default",
            json!({"namespaceSelector": {"matchLabels": {ACCOUNT_LABEL: "default"}},
                   "userNames": ["*"]}),
        ))
        .expect("the IAMAccount is accepted");

    // A validation rule answers with the field and reason it names.
    let refused = server
        .apply(&login_profile(
            &ns,
            "no-source",
            json!({"userName": "nobody"}),
        ))
        .expect_err("a LoginProfile without a password source is refused");
    assert!(
        refused.contains("spec.passwordSecretRef: Required value"),
        "{refused}"
    );

    let mut users = TestUsers::default();
    let user = users.create("oldest");
    let password = strong_password("oldest");
    server
        .apply(&secret(&ns, "bob", &[("password", &password)]))
        .unwrap();
    server
        .apply(&login_profile(
            &ns,
            "bob",
            json!({"userName": user, "passwordSecretRef": {"name": "bob"}}),
        ))
        .unwrap();
    let operator = Operator::start_custom(
        &ns,
        &ns,
        &[],
        "info,loginprofile_operator=debug",
        Some(&server.kubeconfig),
    );
    let lp = wait_for("LoginProfile bob to be Ready (Created)", CONVERGE, || {
        let lp = server.get_lp(&ns, "bob")?;
        let (status, reason, _) = ready(&lp)?;
        (status == "True" && reason == "Created").then_some(lp)
    });
    let profile = iam_profile(&user).expect("IAM has the login profile");
    assert_eq!(
        seconds(status_str(&lp, "createDate")),
        seconds(profile["LoginProfile"]["CreateDate"].as_str().unwrap()),
        "status.createDate is IAM's"
    );
    change_password_as_user(&user, &password, &strong_password("checked"))
        .expect("IAM holds the Secret's password");

    // The immutable user name is refused by its rule, naming the field.
    let refused = server
        .apply(&login_profile(
            &ns,
            "bob",
            json!({"userName": format!("{user}-other"), "passwordSecretRef": {"name": "bob"}}),
        ))
        .expect_err("a new userName is refused");
    assert!(refused.contains("spec.userName: Forbidden"), "{refused}");

    server.kubectl_ok(&["delete", "loginprofile", "bob", "-n", &ns, "--timeout=60s"]);
    wait_until("the login profile to be deleted in IAM", CONVERGE, || {
        no_such_profile(iam_profile(&user))
    });
    assert!(
        !operator.logs().contains(&password),
        "a log line shows the password"
    );
    // Nothing of it reached the environment's own API server.
    assert!(env().kubectl(&["get", "namespace", &ns]).status.code() != Some(0));
}
