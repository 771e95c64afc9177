//! GitOps health from the first second, judged by each project's own code
//! (hack/kstatus, hack/flux-health and hack/argocd-health, built by
//! hack/tools.sh): kstatus (sigs.k8s.io/cli-utils), Flux's kstatus fork and
//! its CEL health check with deploy/gitops/flux-health-check-exprs.yaml, and
//! Argo CD's health package with deploy/gitops/argocd-health.lua. Every version of a LoginProfile, an
//! IAMAccount and a RootLoginProfile the tests see goes through all of them,
//! and the verdict tables asserted here are the ones in docs/gitops.md. The
//! Argo CD and Flux examples decode with each project's own API types and
//! render the chart they pin.

mod support;

use std::{collections::HashMap, fs, process::Stdio};

use serde_json::{Value, json};
use support::*;

const LUA: &str = "deploy/gitops/argocd-health.lua";
const EXPRS: &str = "deploy/gitops/flux-health-check-exprs.yaml";
const CUSTOMIZATION: &str =
    "deploy/gitops/resource_customizations/iam.loginprofile.dev/LoginProfile";
const ACCOUNT_CUSTOMIZATION: &str =
    "deploy/gitops/resource_customizations/iam.loginprofile.dev/IAMAccount";
const ROOT_CUSTOMIZATION: &str =
    "deploy/gitops/resource_customizations/iam.loginprofile.dev/RootLoginProfile";
const ARGOCD_EXAMPLE: &str = "deploy/gitops/argocd-applications.yaml";
const FLUX_EXAMPLE: &str = "deploy/gitops/flux.yaml";

/// What each tool concludes for each version of an IAMAccount, as in
/// docs/gitops.md: (testdata name, case, verdicts).
const ACCOUNT_TABLE: &[(&str, &str, [&str; 4])] = &[
    (
        "applied",
        "IAMAccount applied, not checked yet (the CRD's default status)",
        ["InProgress", "InProgress", "InProgress", "Progressing"],
    ),
    (
        "verified",
        "IAMAccount Verified",
        ["Current", "Current", "Current", "Healthy"],
    ),
    (
        "failing",
        "IAMAccount credentials fail (AssumeRoleFailed), retried",
        ["InProgress", "InProgress", "InProgress", "Progressing"],
    ),
];

/// What each tool concludes for each version of a RootLoginProfile, as in
/// docs/gitops.md: (testdata name, case, verdicts).
const ROOT_TABLE: &[(&str, &str, [&str; 4])] = &[
    (
        "applied",
        "RootLoginProfile applied, not acted on yet (the CRD's default status)",
        ["InProgress", "InProgress", "InProgress", "Progressing"],
    ),
    (
        "up-to-date",
        "RootLoginProfile UpToDate",
        ["Current", "Current", "Current", "Healthy"],
    ),
    (
        "waiting",
        "RootLoginProfile waits for its IAMAccount (AccountNotReady), retried",
        ["InProgress", "InProgress", "InProgress", "Progressing"],
    ),
    (
        "refused",
        "RootLoginProfile refused (RootAccessNotAllowed), Stalled",
        ["Failed", "Failed", "Failed", "Degraded"],
    ),
];

/// The verdicts, in the order of docs/gitops.md's columns: kstatus, Flux
/// (kstatus fork), Flux (healthCheckExprs), Argo CD.
const COLUMNS: [&str; 4] = ["kstatus", "flux-kstatus", "flux-cel", "argocd"];

/// What each tool concludes for each version of a LoginProfile, as in
/// docs/gitops.md: (testdata name, case, verdicts).
const TABLE: &[(&str, &str, [&str; 4])] = &[
    (
        "applied",
        "applied, no operator running (the CRD's default status)",
        ["InProgress", "InProgress", "InProgress", "Progressing"],
    ),
    (
        "queued",
        "queued: finalizer added, no outcome yet",
        ["InProgress", "InProgress", "InProgress", "Progressing"],
    ),
    (
        "ready",
        "Ready",
        ["Current", "Current", "Current", "Healthy"],
    ),
    (
        "retrying",
        "transient failure (UserNotFound), retrying",
        ["InProgress", "InProgress", "InProgress", "Progressing"],
    ),
    (
        "stalled",
        "terminal failure (SecretNotFound), Stalled",
        ["Failed", "Failed", "Failed", "Degraded"],
    ),
    (
        "spec-changed",
        "spec changed, not acted on yet (operator stopped)",
        ["InProgress", "InProgress", "InProgress", "Progressing"],
    ),
    (
        "deleting",
        "being deleted (operator stopped, finalizer held)",
        ["Terminating", "Terminating", "InProgress", "Progressing"],
    ),
];

fn path(relative: &str) -> String {
    format!("{ROOT}/{relative}")
}

/// Every tool's verdict for one object as the API server returns it.
fn verdicts(lp: &Value) -> HashMap<String, String> {
    let run = |program: &str, args: &[String]| {
        let mut command = env().command(program);
        command.args(args);
        let output = run_with_stdin(command, &lp.to_string());
        stdout_of(output, &format!("{program} (built by hack/tools.sh)"))
    };
    let kstatus = run("kstatus", &[]);
    let mut verdicts: HashMap<String, String> = HashMap::from([(
        "kstatus".to_string(),
        kstatus.split('\t').next().unwrap().to_string(),
    )]);
    for (program, args) in [
        ("flux-health", [path(EXPRS)]),
        ("argocd-health", [path(LUA)]),
    ] {
        let more: HashMap<String, String> =
            serde_json::from_str(&run(program, &args)).expect("JSON verdicts");
        verdicts.extend(more);
    }
    verdicts
}

fn row(case: &str) -> &'static (&'static str, &'static str, [&'static str; 4]) {
    TABLE
        .iter()
        .chain(ACCOUNT_TABLE)
        .chain(ROOT_TABLE)
        .find(|(_, name, _)| *name == case)
        .unwrap_or_else(|| panic!("no row {case:?}"))
}

fn assert_row(case: &str, lp: &Value) {
    let got = verdicts(lp);
    let got: Vec<&str> = COLUMNS.iter().map(|c| got[*c].as_str()).collect();
    assert_eq!(got, row(case).2, "{case}: {lp}");
}

/// The object without what differs per run, for Argo CD's testdata.
fn sanitized(lp: &Value) -> Value {
    let mut lp = lp.clone();
    let namespaced = lp["kind"] == "LoginProfile";
    let metadata = lp["metadata"].as_object_mut().unwrap();
    for field in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "managedFields",
        "annotations",
    ] {
        metadata.remove(field);
    }
    if namespaced {
        metadata.insert("namespace".into(), json!("team-a"));
    }
    if metadata.contains_key("deletionTimestamp") {
        metadata.insert("deletionTimestamp".into(), json!("2026-11-28T00:00:00Z"));
    }
    if let Some(conditions) = lp
        .get_mut("status")
        .and_then(|status| status.get_mut("conditions"))
        .and_then(Value::as_array_mut)
    {
        for condition in conditions {
            condition["lastTransitionTime"] = json!("2026-11-28T00:00:00Z");
        }
    }
    lp
}

#[test]
fn health_is_right_from_the_first_second_in_every_tool() {
    let ns = TestNamespace::new("gitops");
    let mut users = TestUsers::default();
    let ready_user = users.create("gitops-ready");
    let missing_user = users.reserve("gitops-nouser");
    let mut captured: Vec<(&str, Value)> = Vec::new();

    // No operator yet: the object as applied.
    let apply = |name: &str, user: &str| {
        env().apply_ok(&secret(
            &ns.name,
            name,
            &[("password", &strong_password("gitops"))],
        ));
        env().apply_ok(&login_profile(
            &ns.name,
            name,
            json!({"userName": user, "passwordSecretRef": {"name": name}}),
        ));
    };
    apply("ready", &ready_user);
    let fresh = get_lp(&ns.name, "ready");
    assert_eq!(fresh["status"], json!({"observedGeneration": -1}));
    assert_row(
        "applied, no operator running (the CRD's default status)",
        &fresh,
    );
    captured.push((
        "applied, no operator running (the CRD's default status)",
        fresh,
    ));

    // Watch every version the API server stores while the operator works.
    let mut watch = env()
        .command("kubectl")
        .args([
            "get",
            "loginprofiles",
            "-n",
            &ns.name,
            "--watch",
            "--output-watch-events",
            "-o",
            "json",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let operator = Operator::start(&ns.name, &[]);
    let ready = wait_ready_reason(&ns.name, "ready", "True", "Created", CONVERGE);
    assert_row("Ready", &ready);
    captured.push(("Ready", ready));
    apply("retrying", &missing_user);
    let retrying = wait_ready_reason(&ns.name, "retrying", "False", "UserNotFound", CONVERGE);
    assert_row("transient failure (UserNotFound), retrying", &retrying);
    captured.push(("transient failure (UserNotFound), retrying", retrying));
    env().apply_ok(&login_profile(
        &ns.name,
        "stalled",
        json!({"passwordSecretRef": {"name": "does-not-exist"}}),
    ));
    let stalled = wait_ready_reason(&ns.name, "stalled", "False", "SecretNotFound", CONVERGE);
    assert_row("terminal failure (SecretNotFound), Stalled", &stalled);
    captured.push(("terminal failure (SecretNotFound), Stalled", stalled));

    // Every version before the operator's first outcome reads as in progress
    // in every tool: a GitOps tool never takes a LoginProfile nobody has
    // acted on for a healthy one.
    watch.kill().unwrap();
    let output = watch.wait_with_output().unwrap();
    let versions: Vec<Value> = serde_json::Deserializer::from_slice(&output.stdout)
        .into_iter::<Value>()
        .map(|event| event.unwrap()["object"].clone())
        .filter(|lp| lp["metadata"]["name"] == "ready")
        .collect();
    let before_outcome: Vec<&Value> = versions
        .iter()
        .take_while(|lp| support::ready(lp).is_none())
        .collect();
    assert!(!before_outcome.is_empty());
    for version in &before_outcome {
        let case = if version["metadata"]["finalizers"].is_array() {
            "queued: finalizer added, no outcome yet"
        } else {
            "applied, no operator running (the CRD's default status)"
        };
        assert_row(case, version);
    }
    if let Some(queued) = before_outcome
        .iter()
        .find(|v| v["metadata"]["finalizers"].is_array())
    {
        captured.push(("queued: finalizer added, no outcome yet", (*queued).clone()));
    }

    // The operator stops; the spec changes; then a deletion waits on the finalizer.
    assert!(operator.stop().success());
    env().kubectl_ok(&[
        "patch",
        "lp",
        "ready",
        "-n",
        &ns.name,
        "--type=merge",
        "-p",
        r#"{"spec":{"passwordResetRequired":true}}"#,
    ]);
    let changed = get_lp(&ns.name, "ready");
    assert_row(
        "spec changed, not acted on yet (operator stopped)",
        &changed,
    );
    captured.push(("spec changed, not acted on yet (operator stopped)", changed));
    env().kubectl_ok(&["delete", "lp", "ready", "-n", &ns.name, "--wait=false"]);
    let deleting = get_lp(&ns.name, "ready");
    assert!(deleting["metadata"]["deletionTimestamp"].is_string());
    assert_row(
        "being deleted (operator stopped, finalizer held)",
        &deleting,
    );
    captured.push(("being deleted (operator stopped, finalizer held)", deleting));

    // The operator comes back and finishes the deletion.
    let _operator = Operator::start(&ns.name, &[]);
    wait_until("the deleted LoginProfile to go", CONVERGE, || {
        !env()
            .kubectl(&["get", "lp", "ready", "-n", &ns.name])
            .status
            .success()
    });

    // `LPO_UPDATE_GITOPS_TESTDATA=1` refreshes Argo CD's upstream-style testdata
    // from these captured objects.
    if std::env::var("LPO_UPDATE_GITOPS_TESTDATA").is_ok() {
        for (case, lp) in &captured {
            let file = format!("{}/testdata/{}.yaml", path(CUSTOMIZATION), row(case).0);
            fs::write(file, serde_yaml::to_string(&sanitized(lp)).unwrap()).unwrap();
        }
    }
}

/// The upstream-style Argo CD test (health_test.yaml with testdata/) passes
/// with Argo CD's own code, and the shipped files are one source.
#[test]
fn argocd_resource_customization_passes_its_own_tests_and_files_agree() {
    let lua = fs::read_to_string(path(LUA)).unwrap();
    let cm: serde_yaml::Value =
        serde_yaml::from_str(&fs::read_to_string(path("deploy/gitops/argocd-cm.yaml")).unwrap())
            .unwrap();
    for (kind, customization, table) in [
        ("LoginProfile", CUSTOMIZATION, TABLE),
        ("IAMAccount", ACCOUNT_CUSTOMIZATION, ACCOUNT_TABLE),
        ("RootLoginProfile", ROOT_CUSTOMIZATION, ROOT_TABLE),
    ] {
        assert_eq!(
            fs::read_to_string(format!("{}/health.lua", path(customization))).unwrap(),
            lua,
            "the upstream-style {kind}/health.lua is a copy of {LUA}"
        );
        assert_eq!(
            cm["data"]
                [format!("resource.customizations.health.iam.loginprofile.dev_{kind}").as_str()]
            .as_str(),
            Some(lua.as_str()),
            "argocd-cm.yaml carries {LUA} for {kind}"
        );
        let tests: serde_yaml::Value = serde_yaml::from_str(
            &fs::read_to_string(format!("{}/health_test.yaml", path(customization))).unwrap(),
        )
        .unwrap();
        let cases = tests["tests"].as_sequence().expect("tests:");
        assert_eq!(
            cases.len(),
            table.len(),
            "{kind}: one test per row of the table"
        );
        for case in cases {
            let input = case["inputPath"].as_str().unwrap();
            let object: Value = serde_yaml::from_str(
                &fs::read_to_string(format!("{}/{input}", path(customization))).unwrap(),
            )
            .unwrap();
            assert_eq!(object["kind"], kind, "{input}");
            let got = verdicts(&object);
            assert_eq!(
                Some(got["argocd"].as_str()),
                case["healthStatus"]["status"].as_str(),
                "{kind} {input}"
            );
            assert_eq!(
                got.get("argocd-message").map(String::as_str),
                case["healthStatus"]["message"].as_str(),
                "{kind} {input}"
            );
        }
    }
    let docs = fs::read_to_string(path("docs/gitops.md")).unwrap();
    assert!(docs.contains(&lua), "docs/gitops.md shows {LUA} as it is");
    let exprs = fs::read_to_string(path(EXPRS)).unwrap();
    assert!(
        docs.contains(exprs.trim_end()),
        "docs/gitops.md shows {EXPRS} as it is"
    );
    for (_, case, row) in TABLE.iter().chain(ACCOUNT_TABLE).chain(ROOT_TABLE) {
        let line = format!("| {case} | {} |", row.join(" | "));
        assert!(docs.contains(&line), "docs/gitops.md lacks the row {line}");
    }
}

/// An IAMAccount reads the same in every tool: in progress until its
/// credentials are checked and while they fail, healthy once they work. A
/// broken IAMAccount no longer shows Healthy in Argo CD.
#[test]
fn iam_account_health_is_right_in_every_tool() {
    let verified = unique("gitops-acct-ok");
    let failing = unique("gitops-acct-bad");
    let mut captured: Vec<(&str, Value)> = Vec::new();
    // As the API server would store it, before any operator acts: a
    // server-side dry run returns it defaulted and stores nothing.
    let mut dry_run = env().command("kubectl");
    dry_run.args(["create", "--dry-run=server", "-o", "json", "-f", "-"]);
    let applied: Value = serde_json::from_str(&stdout_of(
        run_with_stdin(
            dry_run,
            &iam_account(&verified, json!({"userNames": ["nobody"]})),
        ),
        "kubectl create --dry-run=server",
    ))
    .unwrap();
    assert_eq!(applied["status"], json!({"observedGeneration": -1}));
    let case = "IAMAccount applied, not checked yet (the CRD's default status)";
    assert_row(case, &applied);
    captured.push((case, applied));

    let ns = TestNamespace::new("gitops-acct");
    let _operator = Operator::start(&ns.name, &[]);
    env().apply_ok(&iam_account(&verified, json!({"userNames": ["nobody"]})));
    env().apply_ok(&iam_account(
        &failing,
        json!({"roleArn": "arn:aws:iam::123456789012:role/gitops-no-such-role", "userNames": ["nobody"]}),
    ));
    let wait_account = |name: &str, status: &str, reason: &str| {
        wait_for(
            &format!("IAMAccount {name} Ready={status} {reason}"),
            CONVERGE,
            || {
                let account: Value = serde_json::from_str(&env().kubectl_ok(&[
                    "get",
                    "iamaccount",
                    name,
                    "-o",
                    "json",
                ]))
                .unwrap();
                let ready = support::ready(&account)?;
                (ready.0 == status && ready.1 == reason).then_some(account)
            },
        )
    };
    let ok = wait_account(&verified, "True", "Verified");
    assert_row("IAMAccount Verified", &ok);
    captured.push(("IAMAccount Verified", ok));
    let bad = wait_account(&failing, "False", "AssumeRoleFailed");
    // STS's answer, readably: no SDK debug dump of the raw response.
    let message = support::ready(&bad).unwrap().2;
    assert!(
        message.contains("not authorized to perform: sts:AssumeRole")
            && !message.contains("SdkBody")
            && message.len() < 1000,
        "{message}"
    );
    let case = "IAMAccount credentials fail (AssumeRoleFailed), retried";
    assert_row(case, &bad);
    captured.push((case, bad));
    for name in [&verified, &failing] {
        env().kubectl_ok(&["delete", "iamaccount", name, "--timeout=60s"]);
    }

    update_testdata(ACCOUNT_CUSTOMIZATION, &captured);
}

/// `LPO_UPDATE_GITOPS_TESTDATA=1` refreshes Argo CD's upstream-style
/// testdata of a cluster-scoped kind from the objects a test captured, each
/// named after its row.
fn update_testdata(customization: &str, captured: &[(&str, Value)]) {
    if std::env::var("LPO_UPDATE_GITOPS_TESTDATA").is_err() {
        return;
    }
    for (case, object) in captured {
        let mut object = sanitized(object);
        object["metadata"]["name"] = json!(row(case).0);
        if let Some(metadata) = object["metadata"].as_object_mut() {
            metadata.remove("labels");
        }
        let file = format!("{}/testdata/{}.yaml", path(customization), row(case).0);
        fs::write(file, serde_yaml::to_string(&object).unwrap()).unwrap();
    }
}

/// A RootLoginProfile reads the same in every tool: in progress until the
/// operator acts and while its IAMAccount is not verified, failed when it is
/// refused, healthy once root's login profile is as declared.
#[test]
fn root_login_profile_health_is_right_in_every_tool() {
    let org = Organization::new(true);
    let label = unique("gitops-root");
    let root = |name: &str, account: &str, iam_account: &str| {
        json!({
            "apiVersion": "iam.loginprofile.dev/v1alpha1",
            "kind": "RootLoginProfile",
            "metadata": {"name": name, "labels": {"lpo-test": label}},
            "spec": {
                "accountId": account,
                "managementAccountRef": {"name": iam_account},
                "state": "Absent",
            },
        })
        .to_string()
    };
    let mut captured: Vec<(&str, Value)> = Vec::new();
    let mut dry_run = env().command("kubectl");
    dry_run.args(["create", "--dry-run=server", "-o", "json", "-f", "-"]);
    let applied: Value = serde_json::from_str(&stdout_of(
        run_with_stdin(
            dry_run,
            &root(&unique("gitops-root"), &org.members[0], "management"),
        ),
        "kubectl create --dry-run=server",
    ))
    .unwrap();
    assert_eq!(applied["status"], json!({"observedGeneration": -1}));
    let case = "RootLoginProfile applied, not acted on yet (the CRD's default status)";
    assert_row(case, &applied);
    captured.push((case, applied));

    let ns = TestNamespace::new("gitops-root");
    let selector = format!("lpo-test={label}");
    let _operator = Operator::start(
        &ns.name,
        &[
            "--manage-root-login-profiles",
            "--root-login-profile-selector",
            &selector,
        ],
    );
    let management = unique("gitops-mgmt");
    let unverified = unique("gitops-unverified");
    let _accounts = TestAccounts(vec![management.clone(), unverified.clone()]);
    env().apply_ok(&iam_account(
        &management,
        json!({
            "roleArn": format!("arn:aws:iam::{}:role/OrganizationAccountAccessRole", org.management),
            "allowRootAccess": true,
        }),
    ));
    env().apply_ok(&iam_account(
        &unverified,
        json!({
            "roleArn": format!("arn:aws:iam::{}:role/gitops-no-such-role", org.management),
            "allowRootAccess": true,
        }),
    ));
    // One account each: a second RootLoginProfile for an account would wait
    // for the first (AccountClaimed) before anything else is checked.
    let outsider = unique_account_id();
    let roots = RootLoginProfiles(
        [
            ("up-to-date", &org.members[0], &management),
            ("waiting", &org.members[1], &unverified),
            ("refused", &outsider, &"no-such-iamaccount".to_string()),
        ]
        .map(|(name, account, iam_account)| {
            let name = unique(&format!("gitops-root-{name}"));
            env().apply_ok(&root(&name, account, iam_account));
            name
        })
        .to_vec(),
    );
    for (name, (case, status, reason)) in roots.0.iter().zip([
        ("RootLoginProfile UpToDate", "True", "UpToDate"),
        (
            "RootLoginProfile waits for its IAMAccount (AccountNotReady), retried",
            "False",
            "AccountNotReady",
        ),
        (
            "RootLoginProfile refused (RootAccessNotAllowed), Stalled",
            "False",
            "RootAccessNotAllowed",
        ),
    ]) {
        let object = wait_for(
            &format!("RootLoginProfile {name} Ready={status} {reason}"),
            CONVERGE,
            || {
                let object: Value = serde_json::from_str(&env().kubectl_ok(&[
                    "get",
                    "rootloginprofile",
                    name,
                    "-o",
                    "json",
                ]))
                .unwrap();
                let (s, r, _) = support::ready(&object)?;
                (s == status
                    && r == reason
                    && object["status"]["observedGeneration"] == object["metadata"]["generation"])
                    .then_some(object)
            },
        );
        assert_row(case, &object);
        captured.push((case, object));
    }
    update_testdata(ROOT_CUSTOMIZATION, &captured);
}

/// Deletes the RootLoginProfiles a test made.
struct RootLoginProfiles(Vec<String>);

impl Drop for RootLoginProfiles {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = env().kubectl(&["delete", "rootloginprofile", name, "--wait=false"]);
        }
    }
}

/// docs/gitops.md's Argo CD and Flux examples, as shipped in deploy/gitops/:
/// each object decodes strictly with its project's own API type (a misspelt
/// or misplaced field fails), the chart they install is this chart at its
/// version with the image of its appVersion, and the values they pass
/// render with the chart's schema into the role annotation and the
/// admission they say.
#[test]
fn gitops_examples_pin_this_chart_and_decode_with_each_projects_types() {
    let docs = fs::read_to_string(path("docs/gitops.md")).unwrap();
    for (file, program, decoded) in [
        (ARGOCD_EXAMPLE, "argocd-health", "2 Applications"),
        (FLUX_EXAMPLE, "flux-health", "6 objects"),
    ] {
        let text = fs::read_to_string(path(file)).unwrap();
        assert!(docs.contains(&text), "docs/gitops.md shows {file} as it is");
        let output = env()
            .command(program)
            .args(["--validate", &path(file)])
            .output()
            .unwrap();
        assert_eq!(
            stdout_of(output, &format!("{program} --validate {file}")).trim(),
            decoded
        );
    }
    let chart: serde_yaml::Value = serde_yaml::from_str(
        &fs::read_to_string(path("charts/loginprofile-operator/Chart.yaml")).unwrap(),
    )
    .unwrap();
    let (version, app_version) = (
        chart["version"].as_str().unwrap(),
        chart["appVersion"].as_str().unwrap(),
    );
    let objects = |file: &str| yaml_documents(&fs::read_to_string(path(file)).unwrap());
    let argocd = objects(ARGOCD_EXAMPLE);
    let operator = &argocd[0]["spec"]["source"];
    assert_eq!(
        operator["repoURL"],
        "oci://registry.example.com/platform/charts/loginprofile-operator"
    );
    assert_eq!(operator["targetRevision"], version);
    let flux = objects(FLUX_EXAMPLE);
    let find = |kind: &str| {
        flux.iter()
            .find(|object| object["kind"] == kind)
            .unwrap_or_else(|| panic!("{FLUX_EXAMPLE} has no {kind}"))
    };
    let (repository, release) = (find("OCIRepository"), find("HelmRelease"));
    assert_eq!(
        repository["spec"]["url"],
        "oci://registry.example.com/platform/charts/loginprofile-operator"
    );
    assert_eq!(repository["spec"]["ref"]["tag"], version);
    assert_eq!(
        release["spec"]["chartRef"]["name"],
        repository["metadata"]["name"]
    );
    for (tool, values, namespace) in [
        (
            "Argo CD",
            &operator["helm"]["valuesObject"],
            "loginprofile-system",
        ),
        ("Flux", &release["spec"]["values"], "loginprofile-system"),
    ] {
        let rendered = render_chart(values, namespace);
        let deployment = rendered
            .iter()
            .find(|object| object["kind"] == "Deployment")
            .expect("a Deployment");
        assert_eq!(
            deployment["spec"]["template"]["spec"]["containers"][0]["image"],
            format!("registry.example.com/platform/loginprofile-operator:{app_version}"),
            "{tool}"
        );
        let account = rendered
            .iter()
            .find(|object| object["kind"] == "IAMAccount")
            .expect("the IAMAccount default");
        assert_eq!(account["spec"]["namespaces"], json!(["team-a"]), "{tool}");
        assert_eq!(account["spec"]["userNames"], json!(["team-a-*"]), "{tool}");
        let service_account = rendered
            .iter()
            .find(|object| object["kind"] == "ServiceAccount")
            .expect("a ServiceAccount");
        assert!(
            service_account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].is_string(),
            "{tool}"
        );
    }
}

/// `helm template` of this chart with `values`, as the release the examples
/// name: every object it renders, the CRDs included.
fn render_chart(values: &Value, namespace: &str) -> Vec<Value> {
    let file = std::env::temp_dir().join(format!("{}.yaml", unique("gitops-values")));
    fs::write(&file, serde_yaml::to_string(values).unwrap()).unwrap();
    let output = env()
        .command("helm")
        .args([
            "template",
            "loginprofile-operator",
            &path("charts/loginprofile-operator"),
            "--namespace",
            namespace,
            "--include-crds",
            "-f",
        ])
        .arg(&file)
        .output()
        .unwrap();
    let _ = fs::remove_file(&file);
    yaml_documents(&stdout_of(output, "helm template"))
}
