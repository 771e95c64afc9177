//! The chart's alerts and dashboard: the PrometheusRule passes its unit
//! tests with Prometheus' own `promtool` (deploy/monitoring/alerts_test.yaml),
//! every alert links a runbook section that exists in
//! docs/troubleshooting.md, and every metric the alerts and the dashboard
//! name is served by a running operator.

mod support;

use std::{collections::BTreeSet, fs, path::Path};

use serde_json::Value;
use support::*;

const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/loginprofile-operator");

/// The chart rendered with alerts and dashboard, as (PrometheusRule,
/// dashboard JSON).
fn rendered() -> (Value, Value) {
    let output = env()
        .command("helm")
        .args([
            "template",
            "lpo",
            CHART,
            "--namespace",
            "lpo-system",
            "--set",
            "metrics.prometheusRule.enabled=true",
            "--set",
            "metrics.dashboard.enabled=true",
        ])
        .output()
        .unwrap();
    let text = stdout_of(output, "helm template");
    let documents = yaml_documents(&text);
    let rule = documents
        .iter()
        .find(|d| d["kind"] == "PrometheusRule")
        .expect("metrics.prometheusRule.enabled renders a PrometheusRule")
        .clone();
    let dashboard = documents
        .iter()
        .find(|d| {
            d["kind"] == "ConfigMap"
                && d["metadata"]["name"] == "lpo-loginprofile-operator-dashboard"
        })
        .expect("metrics.dashboard.enabled renders the dashboard ConfigMap");
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    let json = dashboard["data"]["loginprofile-operator.json"]
        .as_str()
        .unwrap();
    (
        rule,
        serde_json::from_str(json).expect("the dashboard is JSON"),
    )
}

fn alerts(rule: &Value) -> Vec<&Value> {
    rule["spec"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|group| group["rules"].as_array().unwrap())
        .collect()
}

#[test]
fn alerts_pass_their_promtool_tests_and_link_existing_runbooks() {
    let (rule, _) = rendered();
    let dir = Path::new(ROOT).join("target/test-logs/monitoring");
    fs::create_dir_all(&dir).unwrap();
    let rules = serde_json::json!({"groups": rule["spec"]["groups"]});
    fs::write(
        dir.join("alerts.yaml"),
        serde_yaml::to_string(&rules).unwrap(),
    )
    .unwrap();
    fs::copy(
        format!("{ROOT}/deploy/monitoring/alerts_test.yaml"),
        dir.join("alerts_test.yaml"),
    )
    .unwrap();
    let check = env()
        .command("promtool")
        .args(["check", "rules", "alerts.yaml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    stdout_of(check, "promtool check rules");
    let test = env()
        .command("promtool")
        .args(["test", "rules", "alerts_test.yaml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
    assert!(test.status.success(), "promtool test rules:\n{said}");

    // Every alert is tested, and its runbook section exists.
    let tests = fs::read_to_string(dir.join("alerts_test.yaml")).unwrap();
    let runbooks = fs::read_to_string(format!("{ROOT}/docs/troubleshooting.md")).unwrap();
    let anchors: BTreeSet<String> = runbooks
        .lines()
        .filter_map(|line| line.strip_prefix("## "))
        .map(|heading| heading.trim().to_lowercase())
        .collect();
    let chart =
        fs::read_to_string(format!("{ROOT}/charts/loginprofile-operator/Chart.yaml")).unwrap();
    let app_version = chart
        .lines()
        .find_map(|line| line.strip_prefix("appVersion:"))
        .map(|v| v.trim().trim_matches('"').to_string())
        .expect("Chart.yaml has an appVersion");
    for alert in alerts(&rule) {
        let name = alert["alert"].as_str().unwrap();
        assert!(
            tests.contains(&format!("alertname: {name}\n")),
            "{name} has no promtool test"
        );
        let url = alert["annotations"]["runbook_url"].as_str().unwrap();
        assert!(
            url.contains(&format!("/blob/v{app_version}/docs/troubleshooting.md#")),
            "{name}: the runbook of the installed version ({app_version}): {url}"
        );
        let anchor = url.rsplit_once('#').unwrap().1;
        assert!(
            anchors.contains(anchor),
            "{name}: docs/troubleshooting.md has no section `## {name}` for {url}"
        );
    }
}

/// `loginprofile_*` names in PromQL expressions.
fn metric_names(expressions: impl Iterator<Item = String>) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for expression in expressions {
        let mut rest = expression.as_str();
        while let Some(at) = rest.find("loginprofile_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            names.insert(name);
        }
    }
    names
}

#[test]
fn every_metric_the_alerts_and_dashboard_name_is_served() {
    let (rule, dashboard) = rendered();
    let mut expressions: Vec<String> = alerts(&rule)
        .iter()
        .map(|a| a["expr"].as_str().unwrap().to_string())
        .collect();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            expressions.push(target["expr"].as_str().unwrap().to_string());
        }
    }
    let names = metric_names(expressions.into_iter());
    assert!(names.len() >= 7, "{names:?}");

    // An operator that has done each kind of work once: a password from a
    // Secret and one from Secrets Manager, and console activity reported
    // (a family shows once it has a series).
    let ns = TestNamespace::new("monitoring");
    let operator = Operator::start(
        &ns.name,
        &["--report-console-activity", "--resync-period", "2s"],
    );
    let mut users = TestUsers::default();
    let from_secret = users.create("mon-secret");
    let from_vault = users.create("mon-sm");
    env().apply_ok(&secret(
        &ns.name,
        "a",
        &[("password", &strong_password("mon"))],
    ));
    env().apply_ok(&login_profile(
        &ns.name,
        "a",
        serde_json::json!({"userName": from_secret, "passwordSecretRef": {"name": "a"}}),
    ));
    let secret_id = unique("prod/monitoring");
    create_secrets_manager_secret(&secret_id, &strong_password("vault"));
    env().apply_ok(&login_profile(
        &ns.name,
        "b",
        serde_json::json!({"userName": from_vault, "passwordSecretsManagerRef": {"secretId": secret_id}}),
    ));
    wait_ready_reason(&ns.name, "a", "True", "Created", CONVERGE);
    wait_ready_reason(&ns.name, "b", "True", "Created", CONVERGE);
    // Governance's findings come with the first credential report IAM has
    // made (the first reconcile may find it still being made).
    let served = wait_for("the console findings among the metrics", CONVERGE, || {
        let served = operator.metrics();
        served
            .contains("# TYPE loginprofile_console_users ")
            .then_some(served)
    });
    for name in names {
        // A counter is declared under its name without `_total`.
        let family = name.strip_suffix("_total").unwrap_or(&name);
        assert!(
            served.contains(&format!("# TYPE {family} ")),
            "the alerts or the dashboard name {name}, which the operator does not serve:\n{served}"
        );
    }
    assert!(
        served.contains("loginprofile_leader 1"),
        "without leader election the operator leads: {served}"
    );
}
