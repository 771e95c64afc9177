//! The chart on a real node (hack/node.sh: kubelet and containerd in the dev
//! environment's own network namespace): `helm install` runs the operator's
//! own image (hack/oci-image.py over the `make image-binary` binary) as a
//! Pod with the chart's defaults: user 65532, read-only root, no
//! capabilities, probes, in-cluster configuration from the mounted token.
//! It becomes Available, converges a LoginProfile, logs to `kubectl logs`,
//! rolls over on `helm upgrade` with one writer at a time, hands leadership
//! over when the leader Pod goes, and `helm uninstall` removes it.

mod support;

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use support::*;

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/loginprofile-operator");
/// The chart's default leaderElection.leaseDuration.
const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How long a Pod may take from `helm install` to Ready on this node.
const POD_READY: Duration = Duration::from_secs(120);

/// One release at a time: the node has two cores, and each test reads the
/// emulator's call counts for its own users only, but its timings are
/// clearer alone.
static TURN: Mutex<()> = Mutex::new(());

fn helm(args: &[&str]) -> String {
    let output = env().command("helm").args(args).output().unwrap();
    stdout_of(output, &format!("helm {args:?}"))
}

/// A release of the chart running the local image, watching one namespace
/// of its own; uninstalled when dropped.
struct Release {
    name: String,
    namespace: TestNamespace,
    watched: TestNamespace,
    _turn: std::sync::MutexGuard<'static, ()>,
}

impl Release {
    fn install(prefix: &str, values: &[&str]) -> Self {
        let turn = TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        image_loaded();
        let release = Self {
            name: unique(prefix),
            namespace: TestNamespace::new(&format!("{prefix}-sys")),
            watched: TestNamespace::new(prefix),
            _turn: turn,
        };
        let iam_endpoint = env().vars["LPO_NODE_IAM_ENDPOINT"].clone();
        let mut sets = vec![
            "image.repository=localhost/loginprofile-operator".to_string(),
            "image.tag=dev".into(),
            "image.pullPolicy=Never".into(),
            // The tests' own `default` IAMAccount is in place already.
            "defaultAccount.create=false".into(),
            format!("watchNamespaces={{{}}}", release.watched.name),
            // The emulator, reached at the node IP (hack/netns-bridge.py).
            "extraEnv[0].name=AWS_ENDPOINT_URL".into(),
            format!("extraEnv[0].value={iam_endpoint}"),
            "extraEnv[1].name=AWS_ACCESS_KEY_ID".into(),
            "extraEnv[1].value=testing".into(),
            "extraEnv[2].name=AWS_SECRET_ACCESS_KEY".into(),
            "extraEnv[2].value=testing".into(),
        ];
        sets.extend(values.iter().map(|v| v.to_string()));
        let mut args = vec![
            "install",
            &release.name,
            CHART,
            "-n",
            &release.namespace.name,
        ];
        for set in &sets {
            args.extend(["--set", set]);
        }
        helm(&args);
        release
    }

    fn deployment_name(&self) -> String {
        format!("{}-loginprofile-operator", self.name)
    }

    fn kubectl(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", &self.namespace.name];
        all.extend_from_slice(args);
        env().kubectl_ok(&all)
    }

    fn deployment(&self) -> Value {
        serde_json::from_str(&self.kubectl(&[
            "get",
            "deployment",
            &self.deployment_name(),
            "-o",
            "json",
        ]))
        .unwrap()
    }

    /// The release's Pods that are not terminated (Pending or Running).
    fn live_pods(&self) -> Vec<Value> {
        let list: Value = serde_json::from_str(&self.kubectl(&[
            "get",
            "pods",
            "-l",
            &format!("app.kubernetes.io/instance={}", self.name),
            "-o",
            "json",
        ]))
        .unwrap();
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|pod| matches!(pod["status"]["phase"].as_str(), Some("Pending" | "Running")))
            .cloned()
            .collect()
    }

    /// Waits until the Deployment's current generation is rolled out and
    /// Available with `replicas` ready Pods; returns their names.
    fn wait_available(&self, replicas: u64) -> Vec<String> {
        wait_until(
            &format!("Deployment {} Available", self.deployment_name()),
            POD_READY,
            || {
                let deployment = self.deployment();
                let status = &deployment["status"];
                status["observedGeneration"] == deployment["metadata"]["generation"]
                    && status["updatedReplicas"].as_u64() == Some(replicas)
                    && status["availableReplicas"].as_u64() == Some(replicas)
                    && status["replicas"].as_u64() == Some(replicas)
                    && condition_true(&deployment, "Available")
            },
        );
        self.live_pods()
            .iter()
            .map(|pod| pod["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    }

    fn lease_holder(&self) -> Option<String> {
        let output = env().kubectl(&[
            "get",
            "lease",
            "loginprofile-operator",
            "-n",
            &self.namespace.name,
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ]);
        let holder = String::from_utf8_lossy(&output.stdout).trim().to_string();
        (output.status.success() && !holder.is_empty()).then_some(holder)
    }

    /// A user, its Secret and a LoginProfile in the watched namespace,
    /// converged by the Pod; returns the user and password.
    fn converge_one(&self, users: &mut TestUsers, name: &str) -> (String, String) {
        let user = users.create(&format!("node-{name}"));
        let password = strong_password(name);
        let ns = &self.watched.name;
        env().apply_ok(&secret(ns, name, &[("password", &password)]));
        env().apply_ok(&login_profile(
            ns,
            name,
            json!({"userName": user, "passwordSecretRef": {"name": name}}),
        ));
        wait_ready_reason(ns, name, "True", "Created", CONVERGE);
        iam_profile(&user).expect("the Pod created the login profile, as the AWS CLI sees it");
        (user, password)
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        let _ = env()
            .command("helm")
            .args([
                "uninstall",
                &self.name,
                "-n",
                &self.namespace.name,
                "--wait",
            ])
            .output();
    }
}

#[test]
fn helm_install_runs_the_image_as_a_pod_that_converges_logs_rolls_over_and_uninstalls() {
    let release = Release::install("node-chart", &[]);
    let pods = release.wait_available(1);
    assert_eq!(pods.len(), 1, "{pods:?}");
    let pod: Value =
        serde_json::from_str(&release.kubectl(&["get", "pod", &pods[0], "-o", "json"])).unwrap();
    assert_eq!(pod["spec"]["nodeName"], env().vars["LPO_NODE"].as_str());
    let container = &pod["status"]["containerStatuses"][0];
    assert_eq!(container["image"], "localhost/loginprofile-operator:dev");
    assert_eq!(container["ready"], true);
    assert_eq!(container["restartCount"], 0, "the operator Pod restarted");

    let mut users = TestUsers::default();
    let (user, password) = release.converge_one(&mut users, "first");
    assert_eq!(iam_writes(&user), 1, "{:?}", env().iam_calls(&user));

    // `kubectl logs`: the API server reaches the kubelet inside the node's
    // network namespace. The operator logs what it did, never the password.
    let logs = release.kubectl(&["logs", &format!("deployment/{}", release.deployment_name())]);
    assert!(
        logs.contains(&format!(
            "created the login profile of IAM user \\\"{user}\\\""
        )),
        "{logs}"
    );
    assert!(
        !logs.contains(&password),
        "the password is in the Pod's log"
    );

    // A changed value rolls the Pod over. Without leader election the
    // chart's strategy is Recreate: never two operator Pods at once.
    helm(&[
        "upgrade",
        &release.name,
        CHART,
        "-n",
        &release.namespace.name,
        "--reuse-values",
        "--set",
        "operator.logFilter=info\\,loginprofile_operator=debug",
    ]);
    let deadline = Instant::now() + POD_READY;
    let rolled_to = loop {
        let live = release.live_pods();
        assert!(live.len() <= 1, "two operator Pods at once: {live:?}");
        let names: Vec<&str> = live
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap())
            .collect();
        let ready_new = live.iter().any(|p| {
            p["metadata"]["name"] != pods[0].as_str()
                && p["status"]["containerStatuses"][0]["ready"] == true
        });
        if ready_new {
            break names[0].to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no new Pod became ready: {names:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    release.wait_available(1);
    let args = release.deployment()["spec"]["template"]["spec"]["containers"][0]["args"].clone();
    assert!(
        args.as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--log-filter=info,loginprofile_operator=debug"),
        "{args}"
    );

    // The new Pod took over: the existing profile is left alone, a rotation
    // is applied exactly once, and a new LoginProfile converges.
    let rotated = strong_password("rotated");
    env().apply_ok(&secret(
        &release.watched.name,
        "first",
        &[("password", &rotated)],
    ));
    wait_ready_reason(&release.watched.name, "first", "True", "Updated", CONVERGE);
    let (second_user, _) = release.converge_one(&mut users, "second");
    assert_eq!(calls(&user, "CreateLoginProfile"), 1);
    assert_eq!(
        calls(&user, "UpdateLoginProfile"),
        1,
        "{:?}",
        env().iam_calls(&user)
    );
    assert_eq!(iam_writes(&second_user), 1);
    let new_logs = release.kubectl(&["logs", &rolled_to]);
    assert!(new_logs.contains(&second_user), "{new_logs}");

    // Uninstall: the Deployment and its Pods go; the LoginProfiles (and
    // the login profiles in IAM) stay, as with every chart that keeps its CRDs.
    let deployment = release.deployment_name();
    helm(&[
        "uninstall",
        &release.name,
        "-n",
        &release.namespace.name,
        "--wait",
    ]);
    wait_until("the operator Pods to be gone", POD_READY, || {
        release.live_pods().is_empty()
    });
    let gone = env().kubectl(&[
        "get",
        "deployment",
        &deployment,
        "-n",
        &release.namespace.name,
    ]);
    assert!(String::from_utf8_lossy(&gone.stderr).contains("NotFound"));
    assert!(iam_profile(&user).is_ok());
}

#[test]
fn deleting_the_leader_pod_hands_over_within_the_lease() {
    let release = Release::install(
        "node-leader",
        &["replicaCount=2", "leaderElection.enabled=true"],
    );
    let pods = release.wait_available(2);
    let leader = wait_for("a Lease holder", POD_READY, || release.lease_holder());
    assert!(
        pods.contains(&leader),
        "the holder {leader} is not one of {pods:?}"
    );
    let standby = pods.iter().find(|p| **p != leader).unwrap().clone();

    let mut users = TestUsers::default();
    release.converge_one(&mut users, "before");

    // The leader's log, followed to its end: a deleted Pod's log is gone
    // with it.
    let log_path = std::env::temp_dir().join(format!("{leader}.log"));
    let mut follow = env()
        .command("kubectl")
        .args(["logs", "-f", &leader, "-n", &release.namespace.name])
        .stdout(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    wait_until("the leader's log to stream", POD_READY, || {
        std::fs::read_to_string(&log_path).is_ok_and(|log| log.contains("became the leader"))
    });
    let deleted_at = Instant::now();
    release.kubectl(&["delete", "pod", &leader, "--wait=false"]);
    // The standby (or the Pod replacing the leader) must hold the Lease
    // within one lease duration of the leader's last renewal (what a crash
    // costs), and reconcile.
    let new_leader = wait_for(
        "a new Lease holder",
        LEASE_DURATION + Duration::from_secs(10),
        || release.lease_holder().filter(|holder| *holder != leader),
    );
    let handover = deleted_at.elapsed();
    eprintln!("leader {leader} deleted; {new_leader} holds the Lease after {handover:?}");
    assert!(
        new_leader == standby || !pods.contains(&new_leader),
        "{new_leader} is neither the standby nor a new Pod"
    );
    // SIGTERM is a clean stop: the leader let its controllers finish, then
    // gave the Lease up rather than leaving the standby to wait it out.
    wait_until("the old leader's log to end", CONVERGE, || {
        matches!(follow.try_wait(), Ok(Some(_)))
    });
    let old_log = std::fs::read_to_string(&log_path).unwrap();
    let _ = std::fs::remove_file(&log_path);
    assert!(old_log.contains("SIGTERM received"), "{old_log}");
    assert!(old_log.contains("released the Lease"), "{old_log}");
    let (user, _) = release.converge_one(&mut users, "after");
    assert_eq!(iam_writes(&user), 1);
    release.wait_available(2);
}

/// target/devenv/state: `key=value` lines (a key may repeat: the API
/// server's pid after a restart).
fn devenv_state() -> Vec<(String, String)> {
    std::fs::read_to_string(format!("{ROOT}/target/devenv/state"))
        .expect("the environment is up")
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn ip_json(args: &[&str]) -> Vec<Value> {
    let output = env().command("ip").arg("-j").args(args).output().unwrap();
    serde_json::from_str(&stdout_of(output, &format!("ip -j {args:?}"))).unwrap_or_default()
}

fn is_loopback(address: &str) -> bool {
    address.starts_with("127.")
        || address.starts_with("[::1]")
        || address.starts_with("[::ffff:127.")
}

/// The network rule of docs/development.md ("The node"): nothing of the
/// environment uses an address outside loopback and the network namespace
/// it created. On the host, every TCP/UDP socket of its processes is on
/// loopback; the namespace holds only its own addresses, has no route out,
/// and no link of the host leads into it.
#[test]
fn the_environment_uses_only_loopback_and_its_own_network_namespace() {
    // A Pod running, so that its sandbox's link and address are checked too.
    let release = Release::install("node-net", &[]);
    release.wait_available(1);
    let state = devenv_state();
    let netns = state
        .iter()
        .find(|(k, _)| k == "node_netns")
        .map(|(_, v)| v.clone())
        .expect("the node's network namespace is in target/devenv/state");
    let pids: Vec<String> = state
        .iter()
        .filter(|(k, _)| k.ends_with("_pid"))
        .map(|(_, v)| v.clone())
        .collect();

    let sockets = stdout_of(
        env().command("ss").args(["-tunapH"]).output().unwrap(),
        "ss -tunapH",
    );
    let mut checked = 0;
    for line in sockets.lines() {
        let owners: Vec<&str> = line
            .split("pid=")
            .skip(1)
            .map(|rest| rest.split(|c: char| !c.is_ascii_digit()).next().unwrap())
            .collect();
        if !owners.iter().any(|pid| pids.iter().any(|p| p == pid)) {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (local, peer) = (fields[4], fields[5]);
        assert!(
            is_loopback(local),
            "a socket of the environment off loopback: {line}"
        );
        assert!(
            is_loopback(peer) || peer.ends_with(":*"),
            "a connection of the environment off loopback: {line}"
        );
        checked += 1;
    }
    assert!(
        checked >= 10,
        "saw only {checked} sockets of the environment: {sockets}"
    );

    for address in ip_json(&["-n", &netns, "addr"])
        .iter()
        .flat_map(|link| link["addr_info"].as_array().cloned().unwrap_or_default())
    {
        let local = address["local"].as_str().unwrap();
        assert!(
            ["127.0.0.1", "::1"].contains(&local)
                || local.starts_with("fe80:")
                || local.starts_with("10.77.0.")
                || local.starts_with("10.88.0."),
            "the node's namespace holds {local}"
        );
    }
    for family in ["-4", "-6"] {
        let routes = ip_json(&["-n", &netns, family, "route"]);
        assert!(
            routes.iter().all(|route| route["dst"] != "default"),
            "a route out of the node's namespace: {routes:?}"
        );
    }
    for link in ip_json(&["link"]) {
        let name = link["ifname"].as_str().unwrap();
        assert!(
            !(name.starts_with("lpo-node") || name.starts_with("cni") || name.starts_with("veth")),
            "the host has a link of the node: {link}"
        );
    }
}
