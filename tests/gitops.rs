//! GitOps health: the LoginProfile's conditions follow the kstatus
//! conventions, so the computation Argo CD and Flux use (sigs.k8s.io/cli-utils
//! kstatus, built by hack/tools.sh) judges them without custom scripts:
//! Ready is Current, retrying is InProgress, stalled is Failed.

mod support;

use std::process::Stdio;

use serde_json::{Value, json};
use support::*;

/// kstatus's verdict for a LoginProfile as the API server returns it.
fn kstatus(lp: &Value) -> String {
    let output = run_with_stdin(env().command("kstatus"), &lp.to_string());
    assert!(output.status.success(), "kstatus (built by hack/tools.sh)");
    String::from_utf8(output.stdout)
        .unwrap()
        .split('\t')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn kstatus_reads_ready_in_progress_and_stalled() {
    let f = Fixture::new("gitops", &[]);
    let mut users = TestUsers::default();
    let ready_user = users.create("gitops-ready");
    let missing_user = users.reserve("gitops-nouser");

    // Watch every version the API server stores, from before the apply.
    let mut watch = env()
        .command("kubectl")
        .args([
            "get",
            "loginprofiles",
            "-n",
            f.ns(),
            "--watch",
            "--output-watch-events",
            "-o",
            "json",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    f.apply_pair("ready", &ready_user, &strong_password("gitops"), json!({}));
    let ready = wait_ready_reason(f.ns(), "ready", "True", "Created", CONVERGE);
    assert_eq!(kstatus(&ready), "Current");
    // Every version before the operator's first status (the object as
    // applied, with the CRD's default status, and with the finalizer) reads
    // as in progress: a GitOps tool never takes a LoginProfile nobody has
    // acted on for a healthy one.
    watch.kill().unwrap();
    let output = watch.wait_with_output().unwrap();
    let versions: Vec<Value> = serde_json::Deserializer::from_slice(&output.stdout)
        .into_iter::<Value>()
        .map(|event| event.unwrap()["object"].clone())
        .filter(|lp| lp["metadata"]["name"] == "ready")
        .collect();
    let first = versions
        .first()
        .expect("the watch saw the object as applied");
    assert_eq!(first["status"], json!({"observedGeneration": -1}));
    let before_outcome: Vec<&Value> = versions
        .iter()
        .take_while(|lp| support::ready(lp).is_none())
        .collect();
    assert!(!before_outcome.is_empty());
    for version in before_outcome {
        assert_eq!(kstatus(version), "InProgress", "{version}");
    }

    f.apply_pair(
        "retrying",
        &missing_user,
        &strong_password("gitops"),
        json!({}),
    );
    let retrying = wait_ready_reason(f.ns(), "retrying", "False", "UserNotFound", CONVERGE);
    assert_eq!(kstatus(&retrying), "InProgress");

    env().apply_ok(&login_profile(
        f.ns(),
        "stalled",
        json!({"passwordSecretRef": {"name": "does-not-exist"}}),
    ));
    let stalled = wait_ready_reason(f.ns(), "stalled", "False", "SecretNotFound", CONVERGE);
    assert_eq!(kstatus(&stalled), "Failed");
}
