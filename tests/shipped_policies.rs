//! The shipped IAM policies (docs/iam-policy*.json) as the operator's only
//! rights: the emulator authorizes its calls against them as IAM does, and
//! every AWS call the code makes is granted by a file, none for nothing.
//!
//! make test runs this binary alone: its operators act under identities
//! that cannot assume other tests' roles, and every operator writes the
//! status of every IAMAccount, so beside other binaries they would mark
//! those IAMAccounts not ready.

mod support;

use serde_json::{Value, json};
use support::*;

/// An identity of its own for the operator: an IAM user whose only policy
/// is one shipped file (optionally without one action), and an access key.
struct PolicyIdentity {
    user: String,
    key: Value,
}

impl PolicyIdentity {
    fn new(name: &str, file: &str, without: Option<&str>) -> Self {
        let user = unique(name);
        env().aws_ok(&[
            "iam",
            "create-user",
            "--user-name",
            &user,
            "--path",
            "/operator/",
        ]);
        env().aws_ok(&[
            "iam",
            "put-user-policy",
            "--user-name",
            &user,
            "--policy-name",
            "loginprofile-operator",
            "--policy-document",
            &shipped_policy(file, without),
        ]);
        let key =
            env().aws_ok(&["iam", "create-access-key", "--user-name", &user])["AccessKey"].clone();
        Self { user, key }
    }

    /// The operator, watching `namespace`, with this identity.
    fn start_operator(&self, namespace: &str) -> Operator {
        let credentials = [
            (
                "AWS_ACCESS_KEY_ID",
                self.key["AccessKeyId"].as_str().unwrap(),
            ),
            (
                "AWS_SECRET_ACCESS_KEY",
                self.key["SecretAccessKey"].as_str().unwrap(),
            ),
        ];
        Operator::start_with_env(namespace, &[], &credentials)
    }
}

impl Drop for PolicyIdentity {
    fn drop(&mut self) {
        let id = self.key["AccessKeyId"].as_str().unwrap_or_default();
        let user = self.user.as_str();
        let _ = env().aws(&[
            "iam",
            "delete-access-key",
            "--user-name",
            user,
            "--access-key-id",
            id,
        ]);
        let _ = env().aws(&[
            "iam",
            "delete-user-policy",
            "--user-name",
            user,
            "--policy-name",
            "loginprofile-operator",
        ]);
        let _ = env().aws(&["iam", "delete-user", "--user-name", user]);
    }
}

#[test]
fn an_action_missing_from_the_shipped_policy_is_refused_by_name() {
    // The emulator authorizes the operator's calls against its identity's
    // policies, as IAM does: without iam:UpdateLoginProfile a create works
    // and a rotation is refused, naming the action.
    let identity = PolicyIdentity::new(
        "lpo-no-update",
        "iam-policy.json",
        Some("iam:UpdateLoginProfile"),
    );
    let ns = TestNamespace::new("op-policy");
    let _operator = identity.start_operator(&ns.name);
    let mut users = TestUsers::default();
    let user = users.create("lp-policy");
    env().apply_ok(&secret(
        &ns.name,
        "carol",
        &[("password", &strong_password("pol1"))],
    ));
    env().apply_ok(&login_profile(
        &ns.name,
        "carol",
        json!({"userName": user, "passwordSecretRef": {"name": "carol"}}),
    ));
    wait_ready_reason(&ns.name, "carol", "True", "Created", CONVERGE);

    env().apply_ok(&secret(
        &ns.name,
        "carol",
        &[("password", &strong_password("pol2"))],
    ));
    let refused = wait_ready_reason(&ns.name, "carol", "False", "AccessDenied", CONVERGE);
    let (_, _, message) = ready(&refused).unwrap();
    assert!(
        message.contains("iam:UpdateLoginProfile"),
        "the refusal names the missing action: {message}"
    );
    assert_eq!(
        env()
            .accepted(&user)
            .get("UpdateLoginProfile")
            .copied()
            .unwrap_or(0),
        0,
        "IAM applied no rotation"
    );
}

#[test]
fn the_scoped_policies_reach_only_their_users() {
    // iam-policy-by-tag.json: only users tagged console-access=allowed;
    // iam-policy-by-path.json: only users under /console/. The emulator
    // reads the user's tags and path as IAM does.
    let mut users = TestUsers::default();
    let tagged = users.create("lp-tagged");
    env().aws_ok(&[
        "iam",
        "tag-user",
        "--user-name",
        &tagged,
        "--tags",
        "Key=console-access,Value=allowed",
    ]);
    let under_path = users.reserve("lp-console");
    env().aws_ok(&[
        "iam",
        "create-user",
        "--user-name",
        &under_path,
        "--path",
        "/console/",
    ]);
    let plain = users.create("lp-plain");
    for (file, reached) in [
        ("iam-policy-by-tag.json", &tagged),
        ("iam-policy-by-path.json", &under_path),
    ] {
        let identity = PolicyIdentity::new("lpo-scoped", file, None);
        let ns = TestNamespace::new("op-scoped");
        let _operator = identity.start_operator(&ns.name);
        for (name, user) in [("reached", reached), ("other", &plain)] {
            env().apply_ok(&secret(
                &ns.name,
                name,
                &[("password", &strong_password(name))],
            ));
            env().apply_ok(&login_profile(
                &ns.name,
                name,
                json!({"userName": user, "passwordSecretRef": {"name": name},
                       "deletionPolicy": "Retain"}),
            ));
        }
        wait_ready_reason(&ns.name, "reached", "True", "Created", CONVERGE);
        let refused = wait_ready_reason(&ns.name, "other", "False", "AccessDenied", CONVERGE);
        let (_, _, message) = ready(&refused).unwrap();
        assert!(
            message.contains("iam:CreateLoginProfile"),
            "{file}: {message}"
        );
        assert!(no_such_profile(iam_profile(&plain)), "{file}");
        env().aws_ok(&["iam", "delete-login-profile", "--user-name", reached]);
    }
}

#[test]
fn the_shipped_policies_cover_every_aws_call_the_code_makes() {
    // Each AWS operation the code calls (an SDK builder `.operation()` in
    // src/aws) must be allowed by a shipped policy file, and each action a
    // file allows must be one the code calls: no call left out, none granted
    // for nothing. Root sessions' calls are governed by AWS's task policies,
    // which iam-policy-root.json names, not by an identity policy.
    let operations = sdk_operations();
    let mut called = std::collections::BTreeSet::new();
    let mut by_root_session = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(format!("{ROOT}/src/aws"))
        .unwrap()
        .flatten()
    {
        let path = entry.path();
        let text = std::fs::read_to_string(&path).unwrap();
        for (operation, action) in &operations {
            if text.contains(&format!(".{operation}()")) {
                if path.ends_with("root.rs") && ROOT_SESSION_CALLS.contains(&action.as_str()) {
                    by_root_session.insert(action.clone());
                } else {
                    called.insert(action.clone());
                }
            }
        }
    }
    // The SDK's own credential providers: an IAMAccount's roleArn.
    let clients = std::fs::read_to_string(format!("{ROOT}/src/aws/clients.rs")).unwrap();
    if clients.contains("AssumeRoleProvider") {
        called.insert("sts:AssumeRole".into());
    }
    // Always allowed, whatever the policies say.
    called.remove("sts:GetCallerIdentity");
    assert!(
        called.contains("iam:CreateLoginProfile") && called.contains("sts:AssumeRoot"),
        "the scan found the calls: {called:?}"
    );

    let granted: std::collections::BTreeSet<String> = [
        "iam-policy.json",
        "iam-policy-assume-role.json",
        "iam-policy-root.json",
        "iam-policy-events.json",
    ]
    .into_iter()
    .flat_map(actions_of)
    .collect();
    // The scoped variants of iam-policy.json grant what it grants.
    for variant in ["iam-policy-by-path.json", "iam-policy-by-tag.json"] {
        assert_eq!(
            actions_of(variant),
            actions_of("iam-policy.json"),
            "{variant}"
        );
    }
    let missing: Vec<_> = called.difference(&granted).collect();
    let unused: Vec<_> = granted.difference(&called).collect();
    assert!(
        missing.is_empty(),
        "called, in no shipped policy: {missing:?}"
    );
    assert!(unused.is_empty(), "granted, never called: {unused:?}");
    // The list of root sessions' calls names only calls root.rs makes.
    assert_eq!(
        by_root_session,
        ROOT_SESSION_CALLS.map(String::from).into_iter().collect(),
        "root sessions' calls"
    );
}

/// The actions a policy file of docs/ allows.
fn actions_of(file: &str) -> std::collections::BTreeSet<String> {
    let document: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{ROOT}/docs/{file}")).unwrap())
            .unwrap_or_else(|e| panic!("docs/{file}: {e}"));
    document["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|statement| match &statement["Action"] {
            Value::String(action) => vec![action.clone()],
            actions => actions
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect(),
        })
        .collect()
}

/// The calls src/aws/root.rs makes in a root session (AssumeRoot's
/// credentials), which AWS's root-task policies allow: IAMAuditRootUserCredentials
/// (GetLoginProfile, ListMFADevices, ListAccessKeys), IAMDeleteRootUserCredentials
/// (DeleteLoginProfile), IAMCreateRootUserPassword (CreateLoginProfile).
const ROOT_SESSION_CALLS: [&str; 5] = [
    "iam:GetLoginProfile",
    "iam:ListMFADevices",
    "iam:ListAccessKeys",
    "iam:DeleteLoginProfile",
    "iam:CreateLoginProfile",
];

/// Every operation of the AWS SDK crates the operator depends on, as
/// (builder method, `service:Action`), read from the crates' sources.
fn sdk_operations() -> Vec<(String, String)> {
    let output = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--filter-platform",
        ])
        .arg(format!("{}-unknown-linux-gnu", std::env::consts::ARCH))
        .current_dir(ROOT)
        .output()
        .expect("cargo metadata runs");
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata answers");
    let mut operations = Vec::new();
    for (krate, service) in [
        ("aws-sdk-iam", "iam"),
        ("aws-sdk-sts", "sts"),
        ("aws-sdk-secretsmanager", "secretsmanager"),
        ("aws-sdk-sqs", "sqs"),
    ] {
        let package = metadata["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == krate)
            .unwrap_or_else(|| panic!("{krate} in cargo metadata"));
        let manifest = std::path::Path::new(package["manifest_path"].as_str().unwrap());
        let folder = manifest.parent().unwrap().join("src/operation");
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(operation) = name.strip_suffix(".rs") else {
                continue;
            };
            if operation == "mod" {
                continue;
            }
            // The Rust name's words, capitalised, are the action's; the
            // acronyms IAM spells in capitals are restored.
            let mut action: String = operation
                .split('_')
                .map(|word| {
                    let mut chars = word.chars();
                    chars
                        .next()
                        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
                })
                .collect();
            for (rust, aws) in [
                ("Mfa", "MFA"),
                ("Saml", "SAML"),
                ("Oidc", "OIDC"),
                ("Ssh", "SSH"),
            ] {
                action = action.replace(rust, aws);
            }
            // SQS authorizes a batch call as its single call (DeleteMessageBatch
            // needs sqs:DeleteMessage).
            if service == "sqs" {
                action = action.trim_end_matches("Batch").to_string();
            }
            operations.push((operation.to_string(), format!("{service}:{action}")));
        }
    }
    operations
}
