//! The Helm chart in the real environment: it lints, its schema refuses bad
//! values, every rendering is accepted by the API server, and after `helm
//! install` the operator runs with nothing but the chart's ServiceAccount
//! token: enough to converge, refused everything else.

mod support;

use std::{
    fs,
    path::Path,
    process::{Command, Output},
    time::Duration,
};

use serde_json::json;
use support::*;

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/loginprofile-operator");

fn helm(args: &[&str]) -> Output {
    env()
        .command("helm")
        .args(args)
        .output()
        .expect("helm runs")
}

fn helm_ok(args: &[&str]) -> String {
    stdout_of(helm(args), &format!("helm {args:?}"))
}

/// `helm install` of the chart with no operator Pod: these tests run the
/// operator as a host process with the chart's identity (tests/node.rs runs
/// the chart's Pod), and the tests' own `default` IAMAccount is in place.
fn install_for_host_operator(release: &str, namespace: &str, extra: &[&str]) {
    let mut args = vec![
        "install",
        release,
        CHART,
        "--namespace",
        namespace,
        "--set",
        "defaultAccount.create=false",
        "--set",
        "replicaCount=0",
    ];
    args.extend_from_slice(extra);
    helm_ok(&args);
}

#[test]
fn chart_crd_is_the_generated_crd() {
    let generated = fs::read(format!("{ROOT}/crds/loginprofile-operator.yaml")).unwrap();
    let in_chart = fs::read(format!("{CHART}/crds/loginprofile-operator.yaml")).unwrap();
    assert!(
        generated == in_chart,
        "charts/loginprofile-operator/crds/loginprofile-operator.yaml differs from crds/: run `make crds`"
    );
}

/// The chart README's values table is what `make chart-readme` writes from
/// values.yaml and the schema: every key, its type, default and comment.
#[test]
fn chart_readme_values_table_is_current() {
    let output = Command::new("python3")
        .arg(format!("{ROOT}/hack/chart-readme.py"))
        .arg("--check")
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// One version everywhere: the crate's, the chart's (version and
/// appVersion, the default image tag) and the image label's.
#[test]
fn chart_and_image_follow_the_crate_version() {
    let version = env!("CARGO_PKG_VERSION");
    let chart: serde_yaml::Value =
        serde_yaml::from_str(&fs::read_to_string(format!("{CHART}/Chart.yaml")).unwrap()).unwrap();
    assert_eq!(
        chart["version"].as_str(),
        Some(version),
        "Chart.yaml version"
    );
    assert_eq!(
        chart["appVersion"].as_str(),
        Some(version),
        "Chart.yaml appVersion"
    );
    let dockerfile = fs::read_to_string(format!("{ROOT}/Dockerfile")).unwrap();
    assert!(
        dockerfile.contains(&format!("ARG VERSION={version}\n")),
        "the Dockerfile's VERSION label is {version}"
    );
    let changelog = fs::read_to_string(format!("{ROOT}/CHANGELOG.md")).unwrap();
    assert!(
        changelog.contains(&format!("## {version} ")),
        "CHANGELOG.md has a section for {version}"
    );
}

#[test]
fn chart_lints_and_its_schema_refuses_bad_values() {
    helm_ok(&["lint", CHART, "--strict"]);
    for (value, needle) in [
        (
            "replicaCount=abc",
            "at '/replicaCount': got string, want integer",
        ),
        (
            "operator.resyncPeriod=soon",
            "'soon' does not match pattern",
        ),
        ("operator.logFormat=xml", "/operator/logFormat"),
        (
            "operator.defaultDeletionPolicy=Keep",
            "/operator/defaultDeletionPolicy",
        ),
        ("image.digest=latest", "/image/digest"),
        ("extraArgs={resync-period=1m}", "/extraArgs/0"),
        (
            "replicaCount=2",
            "replicaCount > 1 needs leaderElection.enabled=true",
        ),
    ] {
        let output = helm(&["template", "t", CHART, "--set", value]);
        assert!(!output.status.success(), "{value} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(needle), "{value}: {stderr}");
    }
}

#[test]
fn every_rendering_is_accepted_by_the_api_server() {
    let release = TestNamespace::new("chart-render");
    let a = TestNamespace::new("chart-render-a");
    let b = TestNamespace::new("chart-render-b");
    let watch = format!("watchNamespaces={{{},{}}}", a.name, b.name);
    let value_sets: Vec<Vec<&str>> = vec![
        vec![],
        vec!["--set", &watch],
        vec!["--set", &watch, "--set", "generatedPasswords.enabled=true"],
        vec![
            "--set",
            "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::111122223333:role/lpo",
            "--set",
            "metrics.service.enabled=false",
            "--set",
            "operator.logFormat=text",
        ],
        vec![
            "--set",
            "replicaCount=2",
            "--set",
            "leaderElection.enabled=true",
        ],
        // The IAMAccount `default` with every field of its spec.
        vec![
            "--set",
            "defaultAccount.roleArn=arn:aws:iam::111122223333:role/lpo",
            "--set",
            "defaultAccount.sessionName=lpo-prod",
            "--set",
            "defaultAccount.namespaces={team-a}",
            "--set",
            "defaultAccount.userNames={team-a-*}",
            "--set",
            "defaultAccount.requiredUserTag.key=console",
            "--set",
            "defaultAccount.requiredUserTag.value=allowed",
            "--set",
            "defaultAccount.secretsManagerSecretIds={team-a/*}",
            "--set-json",
            r#"defaultAccount.governance={"mfa":{"requiredWithin":"7d","action":"DisableConsole"}}"#,
            "--set",
            "defaultAccount.takeOwnershipFrom={blue}",
            "--set",
            "defaultAccount.allowDeletionsUntil=2030-01-01T00:00:00Z",
            "--set",
            "defaultAccount.events.sqsQueueUrl=https://sqs.us-east-1.amazonaws.com/111122223333/iam-events",
        ],
        [
            LOCKED_DOWN,
            &[
                "--set",
                "extraArgs={--fingerprint-old-key-file=/keys/old/key}",
                "--set",
                "global.imageRegistry=example.com",
            ],
        ]
        .concat(),
    ];
    for values in value_sets {
        let mut args = vec![
            "template",
            "lpo",
            CHART,
            "--namespace",
            release.name.as_str(),
        ];
        args.extend(values.iter().copied());
        let rendered = helm_ok(&args);
        let path = Path::new(ROOT).join(format!("target/test-logs/{}-render.yaml", release.name));
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, &rendered).unwrap();
        let applied =
            env().kubectl_ok(&["apply", "--dry-run=server", "-f", path.to_str().unwrap()]);
        if values.contains(&"defaultAccount.sessionName=lpo-prod") {
            // Every field the chart can set reached the spec the API server
            // accepted above.
            let documents = render(&values[..]);
            let account = find(&documents, "IAMAccount", "default").unwrap();
            // Kept at uninstall (Helm skips a resource with this policy):
            // LoginProfiles may still name it. Helm's own behaviour is not
            // re-tested here; the environment's IAMAccount `default` (which
            // every test uses) keeps a real uninstall from owning one.
            assert_eq!(
                account["metadata"]["annotations"]["helm.sh/resource-policy"], "keep",
                "{account}"
            );
            let spec = &account["spec"];
            assert_eq!(spec["sessionName"], "lpo-prod", "{spec}");
            assert_eq!(
                spec["governance"]["mfa"]["action"], "DisableConsole",
                "{spec}"
            );
            assert_eq!(
                spec["takeOwnershipFrom"],
                serde_json::json!(["blue"]),
                "{spec}"
            );
            assert_eq!(
                spec["allowDeletionsUntil"], "2030-01-01T00:00:00Z",
                "{spec}"
            );
            assert_eq!(spec["requiredUserTag"]["key"], "console", "{spec}");
            assert_eq!(
                spec["events"]["sqsQueueUrl"],
                "https://sqs.us-east-1.amazonaws.com/111122223333/iam-events",
                "{spec}"
            );
            assert_eq!(
                spec["secretsManagerSecretIds"],
                serde_json::json!(["team-a/*"]),
                "{spec}"
            );
        }
        assert!(
            applied.contains("deployment.apps/lpo-loginprofile-operator created (server dry run)"),
            "{values:?}: {applied}"
        );
        // Hardened pods pass the `restricted` Pod Security Standard.
        assert!(
            rendered.contains("runAsNonRoot: true")
                && rendered.contains("readOnlyRootFilesystem: true")
        );
        assert!(rendered.contains("RuntimeDefault") && rendered.contains("- ALL"));
        // One writer: without leader election an upgrade stops the old Pod
        // before the new one starts; with it, replicas may overlap.
        let leader_election = values.contains(&"leaderElection.enabled=true");
        assert_eq!(
            rendered.contains("type: Recreate"),
            !leader_election,
            "{values:?}: strategy"
        );
    }
}

const BIN: &str = env!("CARGO_BIN_EXE_loginprofile-operator");

/// The values of a locked-down install: NetworkPolicy, the admin's own
/// fingerprint key Secret, the image by digest.
const LOCKED_DOWN: &[&str] = &[
    "--set",
    "networkPolicy.enabled=true",
    "--set",
    "fingerprintKey.existingSecret=team-key",
    "--set",
    "image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
];

/// The documents of one `helm template` rendering, by kind and name.
fn render(values: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["template", "lpo", CHART, "--namespace", "lpo-system"];
    args.extend_from_slice(values);
    yaml_documents(&helm_ok(&args))
}

fn find<'a>(
    documents: &'a [serde_json::Value],
    kind: &str,
    name: &str,
) -> Option<&'a serde_json::Value> {
    documents
        .iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
}

/// Every flag of `run` is a chart value (or one the chart sets itself), and
/// the values an HA or locked-down install needs render what they say.
#[test]
fn chart_values_reach_every_flag_and_render_what_they_say() {
    let help = std::process::Command::new(BIN)
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let flags: Vec<&str> = help
        .split_whitespace()
        .filter(|word| word.starts_with("--") && word.len() > 2)
        .map(|word| word.trim_end_matches([',', '.', ')', ':']))
        .filter(|flag| *flag != "--help")
        .collect();
    let template = fs::read_to_string(format!("{CHART}/templates/deployment.yaml")).unwrap();
    // Set by the chart from its own context, or by extraArgs on purpose.
    let through_env_or_extra_args = [
        "--operator-namespace",
        "--leader-election-namespace",
        "--fingerprint-old-key-file",
    ];
    for flag in flags {
        assert!(
            template.contains(&format!("{flag}="))
                || template.contains(&format!("- {flag}\n"))
                || through_env_or_extra_args.contains(&flag),
            "the chart has no value for {flag}"
        );
    }

    // Defaults: one replica, no PDB, no anti-affinity, no NetworkPolicy.
    let plain = render(&[]);
    assert!(find(&plain, "PodDisruptionBudget", "lpo-loginprofile-operator").is_none());
    assert!(find(&plain, "NetworkPolicy", "lpo-loginprofile-operator").is_none());
    let deployment = find(&plain, "Deployment", "lpo-loginprofile-operator").unwrap();
    let pod = &deployment["spec"]["template"]["spec"];
    assert!(pod["affinity"].is_null(), "{pod}");
    let args = pod["containers"][0]["args"].as_array().unwrap();
    assert!(
        args.contains(&json!("--default-deletion-policy=Delete")),
        "{args:?}"
    );

    // RootLoginProfiles: off by default; on, the operator may read them and
    // write their status, and no role aggregated to tenants names them.
    let rules_of = |documents: &[serde_json::Value]| {
        find(documents, "ClusterRole", "lpo-loginprofile-operator").unwrap()["rules"].to_string()
    };
    assert!(!rules_of(&plain).contains("rootloginprofiles"));
    let root = render(&[
        "--set",
        "rootLoginProfiles.enabled=true",
        "--set",
        "rootLoginProfiles.selector=org=a",
    ]);
    assert!(rules_of(&root).contains("rootloginprofiles/status"));
    let args = &find(&root, "Deployment", "lpo-loginprofile-operator").unwrap()["spec"]["template"]
        ["spec"]["containers"][0]["args"];
    for arg in [
        "--manage-root-login-profiles",
        "--root-login-profile-selector=org=a",
    ] {
        assert!(
            args.as_array().unwrap().contains(&json!(arg)),
            "{arg}: {args}"
        );
    }
    for role in root.iter().filter(|d| {
        d["kind"] == "ClusterRole"
            && d["metadata"]["labels"]
                .as_object()
                .is_some_and(|labels| labels.keys().any(|k| k.contains("aggregate-to")))
    }) {
        assert!(!role.to_string().contains("rootloginprofiles"), "{role}");
    }

    // HA: a PDB and soft anti-affinity; the Lease rights name the Lease.
    let ha = render(&[
        "--set",
        "replicaCount=3",
        "--set",
        "leaderElection.enabled=true",
        "--set",
        "leaderElection.leaseName=lpo-lease",
        "--set",
        "operator.defaultDeletionPolicy=Retain",
    ]);
    let pdb =
        find(&ha, "PodDisruptionBudget", "lpo-loginprofile-operator").expect("a PDB with replicas");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    let pod =
        &find(&ha, "Deployment", "lpo-loginprofile-operator").unwrap()["spec"]["template"]["spec"];
    let preferred =
        &pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0];
    assert_eq!(
        preferred["podAffinityTerm"]["topologyKey"], "kubernetes.io/hostname",
        "{pod}"
    );
    let args = pod["containers"][0]["args"].as_array().unwrap();
    for arg in [
        "--leader-election-lease=lpo-lease",
        "--default-deletion-policy=Retain",
    ] {
        assert!(args.contains(&json!(arg)), "{arg}: {args:?}");
    }
    let role = find(&ha, "Role", "lpo-loginprofile-operator-self").unwrap();
    let lease_rules: Vec<&serde_json::Value> = role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["resources"] == json!(["leases"]))
        .collect();
    for rule in &lease_rules {
        let named = rule["resourceNames"] == json!(["lpo-lease"]);
        assert!(
            named || rule["verbs"] == json!(["create"]),
            "only create (which RBAC cannot name) is unnamed: {rule}"
        );
    }
    // A spread constraint of the admin's replaces the default anti-affinity.
    let spread = render(&[
        "--set",
        "replicaCount=2",
        "--set",
        "leaderElection.enabled=true",
        "--set",
        "topologySpreadConstraints[0].maxSkew=1",
        "--set",
        "topologySpreadConstraints[0].topologyKey=topology.kubernetes.io/zone",
        "--set",
        "topologySpreadConstraints[0].whenUnsatisfiable=ScheduleAnyway",
    ]);
    let pod = &find(&spread, "Deployment", "lpo-loginprofile-operator").unwrap()["spec"]["template"]
        ["spec"];
    assert!(
        pod["affinity"].is_null() && pod["topologySpreadConstraints"][0]["maxSkew"] == 1,
        "{pod}"
    );

    // Locked down: digest, the admin's own fingerprint key as a file (and no
    // Secret rights in the release namespace), a NetworkPolicy, extra args last.
    let digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let locked = render(&[
        "--set",
        &format!("image.digest={digest}"),
        "--set",
        "fingerprintKey.existingSecret=team-key",
        "--set",
        "fingerprintKey.oldKeys={old-1}",
        "--set",
        "networkPolicy.enabled=true",
        "--set",
        "extraArgs={--resync-period=1h}",
    ]);
    let pod = &find(&locked, "Deployment", "lpo-loginprofile-operator").unwrap()["spec"]["template"]
        ["spec"];
    let container = &pod["containers"][0];
    assert_eq!(
        container["image"],
        format!("ghcr.io/loginprofile-operator/loginprofile-operator@{digest}")
    );
    let args = container["args"].as_array().unwrap();
    assert!(args.contains(&json!(
        "--fingerprint-key-file=/var/run/loginprofile-operator/fingerprint-key/key"
    )));
    assert_eq!(
        args.last(),
        Some(&json!("--resync-period=1h")),
        "extraArgs come last and win"
    );
    // Rotating it: the old key mounted beside the new, and still verifying.
    assert!(args.contains(&json!(
        "--fingerprint-old-key-file=/var/run/loginprofile-operator/fingerprint-key/old-1"
    )));
    assert_eq!(
        pod["volumes"][0]["secret"]["items"],
        json!([{"key": "key", "path": "key"}, {"key": "old-1", "path": "old-1"}])
    );
    assert_eq!(pod["volumes"][0]["secret"]["secretName"], "team-key");
    assert_eq!(container["volumeMounts"][0]["readOnly"], true);
    let role = find(&locked, "Role", "lpo-loginprofile-operator-self").unwrap();
    assert!(
        !role["rules"].to_string().contains("secrets"),
        "with its own key Secret mounted, the operator needs no Secret rights in its namespace: {role}"
    );
    let policy =
        find(&locked, "NetworkPolicy", "lpo-loginprofile-operator").expect("networkPolicy.enabled");
    assert_eq!(policy["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(policy["spec"]["ingress"][0]["ports"][0]["port"], "http");
}

/// A kubeconfig that authenticates as the chart's ServiceAccount (a token
/// from the TokenRequest API), for running the operator with exactly the
/// chart's permissions.
fn service_account_kubeconfig(release: &str, release_namespace: &str) -> std::path::PathBuf {
    token_kubeconfig(
        &format!("{release}-loginprofile-operator"),
        release_namespace,
    )
}

/// With `watchNamespaces`, deleting a watched namespace must not take the
/// operator's rights on its LoginProfiles with it before their finalizers
/// ran: the namespace goes, and so does the IAM login profile.
#[test]
fn deleting_a_watched_namespace_runs_the_finalizers() {
    let release = TestNamespace::new("chart-nsdel-rel");
    let watched_name = unique("chart-nsdel");
    env().kubectl_ok(&["create", "namespace", &watched_name]);
    env().kubectl_ok(&[
        "label",
        "namespace",
        &watched_name,
        &format!("{ACCOUNT_LABEL}=default"),
    ]);
    let watch = format!("watchNamespaces={{{watched_name}}}");
    // Its own release name: the chart's ClusterRole is named after it.
    let release_name = unique("lpo-nsdel");
    install_for_host_operator(&release_name, &release.name, &["--set", &watch]);
    let kubeconfig = service_account_kubeconfig(&release_name, &release.name);
    let operator = Operator::start_custom(
        &watched_name,
        &release.name,
        &[],
        "info,loginprofile_operator=debug",
        Some(&kubeconfig),
    );
    let mut users = TestUsers::default();
    let user = users.create("chart-nsdel");
    env().apply_ok(&secret(
        &watched_name,
        "pw",
        &[("password", &strong_password("nsdel"))],
    ));
    env().apply_ok(&login_profile(
        &watched_name,
        "lp",
        json!({"userName": user, "passwordSecretRef": {"name": "pw"}}),
    ));
    wait_ready_reason(&watched_name, "lp", "True", "Created", CONVERGE);
    env().kubectl_ok(&["delete", "namespace", &watched_name, "--wait=false"]);
    wait_until(
        "the watched namespace to be gone",
        Duration::from_secs(90),
        || {
            !env()
                .kubectl(&["get", "namespace", &watched_name])
                .status
                .success()
        },
    );
    assert!(
        no_such_profile(iam_profile(&user)),
        "the finalizer deleted the IAM login profile"
    );
    drop(operator);
    helm_ok(&["uninstall", &release_name, "--namespace", &release.name]);
}

#[test]
fn installed_chart_rbac_is_enough_and_no_more() {
    let release = TestNamespace::new("chart-rel");
    let watched = TestNamespace::new("chart-watched");
    let other = TestNamespace::new("chart-other");
    // The restricted Pod Security Standard in the release namespace.
    env().kubectl_ok(&[
        "label",
        "namespace",
        &release.name,
        "pod-security.kubernetes.io/enforce=restricted",
    ]);
    let watch = format!("watchNamespaces={{{}}}", watched.name);
    install_for_host_operator(
        "lpo",
        &release.name,
        &["--set", &watch, "--set", "rootLoginProfiles.enabled=true"],
    );
    // The Deployment has no replicas here, so admit its pod template as a
    // Pod (server-side dry run): Pod Security admission enforces `restricted`.
    let deployment: serde_json::Value = serde_json::from_str(&env().kubectl_ok(&[
        "get",
        "deployment",
        "lpo-loginprofile-operator",
        "-n",
        &release.name,
        "-o",
        "json",
    ]))
    .unwrap();
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "pss-check", "namespace": release.name},
        "spec": deployment["spec"]["template"]["spec"],
    });
    let mut dry_run = env().command("kubectl");
    dry_run.args(["apply", "--dry-run=server", "-f", "-"]);
    let admitted = run_with_stdin(dry_run, &pod.to_string());
    assert!(
        admitted.status.success(),
        "restricted Pod Security refused the pod: {}",
        String::from_utf8_lossy(&admitted.stderr)
    );

    // The operator runs outside the cluster with the chart's identity only.
    let kubeconfig = service_account_kubeconfig("lpo", &release.name);
    let label = unique("chart-root");
    let selector = format!("lpo-test={label}");
    let operator = Operator::start_custom(
        &watched.name,
        &release.name,
        &[
            "--manage-root-login-profiles",
            "--root-login-profile-selector",
            &selector,
        ],
        "info,loginprofile_operator=debug",
        Some(&kubeconfig),
    );
    let mut users = TestUsers::default();
    let user = users.create("chart-user");
    env().apply_ok(&secret(
        &watched.name,
        "pw",
        &[("password", &strong_password("chart"))],
    ));
    env().apply_ok(&login_profile(
        &watched.name,
        "lp",
        json!({"userName": user, "passwordSecretRef": {"name": "pw"}}),
    ));
    wait_ready_reason(&watched.name, "lp", "True", "Created", CONVERGE);
    assert!(
        events(&watched.name, "lp")
            .iter()
            .any(|e| e["reason"] == "Created"),
        "events are allowed"
    );
    // RootLoginProfiles: read, status written, Events (no AWS call here:
    // the IAMAccount it names does not exist).
    let root = unique("chart-root");
    env().apply_ok(
        &json!({
            "apiVersion": "iam.loginprofile.dev/v1alpha1", "kind": "RootLoginProfile",
            "metadata": {"name": root, "labels": {"lpo-test": label}},
            "spec": {"accountId": "111122223333", "managementAccountRef": {"name": unique("none")},
                     "state": "Absent"},
        })
        .to_string(),
    );
    wait_until("the RootLoginProfile's status and Event", CONVERGE, || {
        let status = env().kubectl_ok(&[
            "get",
            "rootloginprofile",
            &root,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}",
        ]);
        status == "RootAccessNotAllowed"
            && events("kube-system", &root)
                .iter()
                .any(|e| e["reason"] == "RootAccessNotAllowed")
    });
    env().kubectl_ok(&["delete", "rootloginprofile", &root]);

    // What the role must not allow.
    let as_operator = |args: &[&str]| {
        let mut all = vec!["--kubeconfig", kubeconfig.to_str().unwrap()];
        all.extend_from_slice(args);
        env()
            .command("kubectl")
            .args(&all)
            .env_remove("KUBECONFIG")
            .output()
            .unwrap()
    };
    let read_other = as_operator(&["get", "secrets", "-n", &other.name]);
    assert!(
        String::from_utf8_lossy(&read_other.stderr).contains("forbidden"),
        "reads a namespace it does not watch"
    );
    for (verb, resource, namespace) in [
        ("delete", "secrets", watched.name.as_str()),
        ("create", "secrets", watched.name.as_str()),
        ("update", "secrets", watched.name.as_str()),
        ("create", "rolebindings", watched.name.as_str()),
        ("create", "clusterroles", watched.name.as_str()),
        ("escalate", "roles", release.name.as_str()),
        ("get", "secrets", release.name.as_str()),
        ("create", "leases", release.name.as_str()),
    ] {
        let answer = as_operator(&["auth", "can-i", verb, resource, "-n", namespace]);
        assert_eq!(
            String::from_utf8_lossy(&answer.stdout).trim(),
            "no",
            "the operator may {verb} {resource} in {namespace}"
        );
    }
    let own_key = as_operator(&[
        "get",
        "secret",
        "loginprofile-operator-fingerprint-key",
        "-n",
        &release.name,
    ]);
    assert!(own_key.status.success(), "its own key Secret is readable");

    // Upgrade: generated passwords need Secret create in watched namespaces.
    helm_ok(&[
        "upgrade",
        "lpo",
        CHART,
        "--namespace",
        &release.name,
        "--set",
        &watch,
        "--set",
        "generatedPasswords.enabled=true",
        "--set",
        "defaultAccount.create=false",
    ]);
    let answer = as_operator(&["auth", "can-i", "create", "secrets", "-n", &watched.name]);
    assert_eq!(String::from_utf8_lossy(&answer.stdout).trim(), "yes");

    // Uninstall leaves the CRD, the LoginProfiles and the IAM login profiles.
    drop(operator);
    helm_ok(&["uninstall", "lpo", "--namespace", &release.name]);
    env().kubectl_ok(&["get", "crd", "loginprofiles.iam.loginprofile.dev"]);
    env().kubectl_ok(&["get", "loginprofile", "lp", "-n", &watched.name]);
    iam_profile(&user).expect("the IAM login profile stays after uninstall");
}

/// Tenants hold the built-in `edit` role in their namespace: the chart's
/// aggregated ClusterRoles let them manage LoginProfiles there, and nothing
/// lets them write an IAMAccount (only cluster admins decide who may set
/// which password, docs/tenancy.md) or a RootLoginProfile (root's console
/// access, docs/root.md), even with RootLoginProfiles enabled.
#[test]
fn tenants_may_edit_login_profiles_but_not_iam_accounts_or_root_login_profiles() {
    let release = TestNamespace::new("chart-ten-rel");
    let tenant = TestNamespace::new("chart-tenant");
    let release_name = unique("lpo-ten");
    install_for_host_operator(
        &release_name,
        &release.name,
        &["--set", "rootLoginProfiles.enabled=true"],
    );
    env().kubectl_ok(&["create", "serviceaccount", "dev", "-n", &tenant.name]);
    env().kubectl_ok(&[
        "create",
        "rolebinding",
        "dev-edit",
        "--clusterrole=edit",
        &format!("--serviceaccount={}:dev", tenant.name),
        "-n",
        &tenant.name,
    ]);
    let dev = Tenant::with_kubeconfig(token_kubeconfig("dev", &tenant.name));
    let as_tenant = |args: &[&str], stdin: Option<&str>| dev.kubectl(args, stdin);
    // The controller manager aggregates the chart's rules into `edit`.
    wait_until(
        "`edit` to include LoginProfiles",
        Duration::from_secs(30),
        || {
            String::from_utf8_lossy(
                &as_tenant(
                    &[
                        "auth",
                        "can-i",
                        "create",
                        "loginprofiles",
                        "-n",
                        &tenant.name,
                    ],
                    None,
                )
                .stdout,
            )
            .trim()
                == "yes"
        },
    );
    let created = as_tenant(
        &["apply", "-f", "-"],
        Some(&login_profile(
            &tenant.name,
            "mine",
            json!({"userName": "tenant-user", "passwordSecretRef": {"name": "pw"}}),
        )),
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let account = json!({
        "apiVersion": "iam.loginprofile.dev/v1alpha1", "kind": "IAMAccount",
        "metadata": {"name": unique("tenant-made")},
        "spec": {"namespaces": [tenant.name], "userNames": ["*"], "allowAdoption": true},
    })
    .to_string();
    let attempts = [
        as_tenant(&["create", "-f", "-"], Some(&account)),
        as_tenant(
            &[
                "patch",
                "iamaccount",
                "default",
                "--type=merge",
                "-p",
                r#"{"spec":{"userNames":["*"]}}"#,
            ],
            None,
        ),
        as_tenant(&["delete", "iamaccount", "default"], None),
        as_tenant(
            &["create", "-f", "-"],
            Some(
                &json!({
                    "apiVersion": "iam.loginprofile.dev/v1alpha1", "kind": "RootLoginProfile",
                    "metadata": {"name": unique("tenant-root")},
                    "spec": {"accountId": "111122223333", "managementAccountRef": {"name": "default"},
                             "state": "RecoveryEnabled"},
                })
                .to_string(),
            ),
        ),
        as_tenant(&["get", "rootloginprofiles"], None),
    ];
    for attempt in attempts {
        assert!(!attempt.status.success());
        assert!(
            String::from_utf8_lossy(&attempt.stderr).contains("forbidden"),
            "{}",
            String::from_utf8_lossy(&attempt.stderr)
        );
    }
    helm_ok(&["uninstall", &release_name, "--namespace", &release.name]);
}

/// The renders an adopter lints (default, HA, per-namespace, locked down)
/// pass kubeconform (Kubernetes' schemas and our CRDs', strict), kube-score
/// and checkov with no finding left: each one the chart accepts is
/// suppressed in the chart with its reason beside it. Without those
/// suppressions both scorers fail, so they are what makes this pass.
#[test]
fn chart_renders_pass_kubeconform_kube_score_and_checkov() {
    let dir = Path::new(ROOT).join("target/test-logs/chart-lint");
    fs::create_dir_all(&dir).unwrap();
    let python = format!("{}/bin/python", env().vars["LPO_LINTERS_VENV"]);
    let schemas = dir.join("schemas");
    let prepared = env()
        .command(&python)
        .args([
            &format!("{ROOT}/hack/kubeconform-schemas.py"),
            "1.34.0",
            &format!("{ROOT}/crds/loginprofile-operator.yaml"),
            schemas.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    stdout_of(prepared, "hack/kubeconform-schemas.py");
    let location = format!(
        "{}/{{{{ .NormalizedKubernetesVersion }}}}-standalone{{{{ .StrictSuffix }}}}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json",
        schemas.display()
    );
    let renders: [(&str, &[&str]); 4] = [
        ("default", &[]),
        (
            "ha",
            &[
                "--set",
                "replicaCount=3",
                "--set",
                "leaderElection.enabled=true",
            ],
        ),
        (
            "namespaces",
            &[
                "--set",
                "watchNamespaces={team-a,team-b}",
                "--set",
                "generatedPasswords.enabled=true",
            ],
        ),
        ("locked-down", LOCKED_DOWN),
    ];
    let lint = |file: &Path| -> Vec<(&'static str, Output)> {
        let file = file.to_str().unwrap();
        vec![
            (
                "kubeconform",
                env()
                    .command("kubeconform")
                    .args([
                        "-strict",
                        "-summary",
                        "-kubernetes-version",
                        "1.34.0",
                        "-schema-location",
                        &location,
                        file,
                    ])
                    .output()
                    .unwrap(),
            ),
            (
                "kube-score",
                env()
                    .command("kube-score")
                    .args(["score", file])
                    .output()
                    .unwrap(),
            ),
        ]
    };
    let mut linted = Vec::new();
    for (name, values) in renders {
        let mut args = vec!["template", "lpo", CHART, "--namespace", "lpo-system"];
        args.extend_from_slice(values);
        let file = dir.join(format!("{name}.yaml"));
        fs::write(&file, helm_ok(&args)).unwrap();
        linted.push(file.clone());
        for (tool, output) in lint(&file) {
            assert!(
                output.status.success(),
                "{tool} on the {name} render ({}):\n{}{}",
                file.display(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }

    // The same default render without the chart's suppressions: both
    // scorers find what the annotations explain.
    let mut bare = render(&[]);
    for document in &mut bare {
        if let Some(metadata) = document["metadata"].as_object_mut() {
            metadata.remove("annotations");
        }
    }
    let file = dir.join("default-unsuppressed.yaml");
    let text: String = bare
        .iter()
        .map(|d| format!("---\n{}", serde_yaml::to_string(d).unwrap()))
        .collect();
    fs::write(&file, text).unwrap();
    for (tool, output) in lint(&file) {
        let report = String::from_utf8_lossy(&output.stdout);
        match tool {
            "kubeconform" => assert!(output.status.success(), "{report}"),
            _ => assert!(
                !output.status.success() && report.contains("CPU limit is not set"),
                "{report}"
            ),
        }
    }

    // checkov once over every render (it takes seconds to start): nothing
    // found in the renders as shipped, and what the suppressions explain
    // found in the bare one.
    linted.push(file.clone());
    let mut checkov = env().command("checkov");
    for render in &linted {
        checkov.arg("-f").arg(render);
    }
    checkov.args(["--framework", "kubernetes", "--skip-download", "-o", "json"]);
    let output = checkov.output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "checkov's JSON ({e}):\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let reports = match report {
        serde_json::Value::Array(reports) => reports,
        single => vec![single],
    };
    let summary = &reports[0]["summary"];
    assert_eq!(summary["parsing_errors"], 0, "checkov: {summary}");
    assert!(
        summary["resource_count"].as_u64() > Some(40),
        "checkov read every render: {summary}"
    );
    let failed: Vec<(String, String)> = reports
        .iter()
        .flat_map(|report| {
            report["results"]["failed_checks"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|check| {
            (
                check["file_path"].as_str().unwrap_or_default().to_string(),
                check["check_id"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let in_renders: Vec<_> = failed
        .iter()
        .filter(|(path, _)| !path.ends_with("default-unsuppressed.yaml"))
        .collect();
    assert!(
        in_renders.is_empty(),
        "checkov on the renders: {in_renders:?}"
    );
    assert!(
        failed.iter().any(|(_, check)| check == "CKV_K8S_11"),
        "checkov finds what the suppressions explain in the bare render: {failed:?}"
    );
}
