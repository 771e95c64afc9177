//! The binary's own commands: `crd` matches the generated file in crds/
//! (stale files fail here), `sample` is a valid manifest for the API server,
//! and `--help` documents every flag with its environment variable.

mod support;

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_loginprofile-operator");

fn run(args: &[&str]) -> String {
    let output = Command::new(BIN)
        .args(args)
        .output()
        .expect("the binary runs");
    support::stdout_of(output, &format!("loginprofile-operator {args:?}"))
}

#[test]
fn generated_crd_file_is_fresh() {
    let generated = run(&["crd"]);
    let committed =
        std::fs::read_to_string(format!("{}/crds/loginprofile-operator.yaml", support::ROOT))
            .unwrap();
    assert!(
        generated == committed,
        "crds/loginprofile-operator.yaml is stale: run `make crds` and commit the result"
    );
}

#[test]
fn sample_is_accepted_by_the_api_server() {
    let env = support::env();
    let ns = support::TestNamespace::new("cli-sample");
    let sample = run(&["sample"]).replace("namespace: default", &format!("namespace: {}", ns.name));
    let mut dry_run = env.command("kubectl");
    dry_run.args(["apply", "--dry-run=server", "-f", "-"]);
    let output = support::run_with_stdin(dry_run, &sample);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stdout)
            .contains("loginprofile.iam.loginprofile.dev/bob created (server dry run)")
    );
}

#[test]
fn help_shows_flags_with_their_environment_variables() {
    let help = run(&["run", "--help"]);
    for flag in [
        "--namespace",
        "--operator-namespace",
        "--http-addr",
        "--resync-period",
        "--concurrency",
        "--iam-rate-limit",
        "--iam-timeout",
        "--iam-max-attempts",
        "--log-format",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    assert!(
        help.contains("[env: POD_NAMESPACE=]") && help.contains("[env: LPO_RESYNC_PERIOD=]"),
        "{help}"
    );
    assert!(run(&["--version"]).starts_with(&format!(
        "loginprofile-operator {}",
        env!("CARGO_PKG_VERSION")
    )));
}

#[test]
fn bad_flags_are_refused_with_a_message() {
    let output = Command::new(BIN)
        .args(["run", "--resync-period", "soon"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--resync-period") && stderr.contains("soon"),
        "{stderr}"
    );
    let env = support::env();
    let output = env
        .command(BIN)
        .args([
            "run",
            "--fingerprint-key-file",
            "/nonexistent/key",
            "--log-format",
            "json",
        ])
        .env_remove("POD_NAMESPACE")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot read the fingerprint key file /nonexistent/key"),
        "{stderr}"
    );
}
