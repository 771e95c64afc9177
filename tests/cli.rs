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

/// `sample`, applied as its comment says into a namespace the IAMAccount
/// admits, converges once its IAM user exists: a first install's example
/// works as printed.
#[test]
fn sample_works_as_printed_in_an_admitted_namespace() {
    let env = support::env();
    let ns = support::TestNamespace::new("cli-sample");
    let mut users = support::TestUsers::default();
    let user = users.create("sample");
    let sample = run(&["sample"]);
    assert!(
        !sample.contains("namespace:"),
        "the sample goes where -n says"
    );
    // The LoginProfile's name is the IAM user's; a test's user is unique.
    let sample = sample.replace("  name: bob ", &format!("  name: {user} "));
    let _operator = support::Operator::start(&ns.name, &[]);
    let mut apply = env.command("kubectl");
    apply.args(["apply", "-n", &ns.name, "-f", "-"]);
    let output = support::run_with_stdin(apply, &sample);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    support::wait_ready_reason(&ns.name, &user, "True", "Created", support::CONVERGE);
    support::iam_profile(&user).expect("the sample's login profile exists in IAM");
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

/// docs/reference.md is what `reference` prints today (`make reference`).
#[test]
fn reference_page_is_generated_from_the_code() {
    let generated = run(&["reference"]);
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/reference.md")).unwrap();
    assert!(
        generated == committed,
        "docs/reference.md is stale: run `make reference`"
    );
}

/// `sample root` is what the API server accepts as printed (its CEL rules
/// included), and a bad account id is refused with the rule's message.
#[test]
fn the_root_sample_is_accepted_and_a_bad_account_id_is_refused() {
    let env = support::env();
    let sample = run(&["sample", "root"]);
    let dry_run = |manifest: &str| {
        let mut apply = env.command("kubectl");
        apply.args(["apply", "--dry-run=server", "-f", "-"]);
        support::run_with_stdin(apply, manifest)
    };
    let accepted = dry_run(&sample);
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
    let refused = dry_run(&sample.replace("\"111122223333\"", "\"1234\""));
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("accountId must be the 12-digit id"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // Root access and tenants never share an IAMAccount.
    let shared = sample.replace(
        "  allowRootAccess: true",
        "  namespaces: [team-a]\n  allowRootAccess: true",
    );
    assert_ne!(shared, sample, "the sample names allowRootAccess");
    let refused = dry_run(&shared);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("allowRootAccess is for an IAMAccount no tenant uses"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
