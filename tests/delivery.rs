//! Encrypted delivery of generated passwords (`generatePassword.deliverTo`),
//! against the real API server and the IAM emulator, opened the way the
//! person would: the reference `age` CLI (hack/tools.sh builds it) with an
//! `age-keygen` key or an SSH key, GnuPG (`gpg -d`, a Debian package
//! hack/deps.sh installs) with a key it made, then ChangePassword as the
//! IAM user, which only the password IAM holds allows. No Secret, log line
//! (at trace level), Event or metric may hold the plaintext.

mod support;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::*;

const FIXTURE_KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/test-keys");

fn delivered(namespace: &str, name: &str, user: &str, generate: Value) -> String {
    login_profile(
        namespace,
        name,
        json!({"userName": user, "generatePassword": generate}),
    )
}

/// Waits until status carries a ciphertext whose `reissue` and recipients
/// are `want`; returns the object.
fn wait_delivered(namespace: &str, name: &str, want: impl Fn(&Value) -> bool) -> Value {
    wait_for("status.encryptedPassword", CONVERGE, || {
        let lp = get_lp(namespace, name);
        let ready = ready(&lp).is_some_and(|(status, _, _)| status == "True");
        (ready && want(&lp["status"]["encryptedPassword"])).then_some(lp)
    })
}

fn ciphertext(lp: &Value) -> String {
    lp["status"]["encryptedPassword"]["age"]
        .as_str()
        .expect("an age ciphertext")
        .to_string()
}

/// Nothing in the namespace's Secrets, the object's Events, the operator's
/// log or its metrics holds `password` (plain or base64).
fn nowhere_in_the_cluster(namespace: &str, name: &str, password: &str, operator: &Operator) {
    use base64::Engine;
    let encoded = base64::engine::general_purpose::STANDARD.encode(password);
    let secrets = env().kubectl_ok(&["get", "secrets", "-n", namespace, "-o", "json"]);
    assert!(
        !secrets.contains(password) && !secrets.contains(&encoded),
        "a Secret holds the password"
    );
    let events = serde_json::to_string(&events(namespace, name)).unwrap();
    assert!(!events.contains(password), "an Event holds the password");
    assert!(
        !operator.logs().contains(password),
        "a log line shows the password"
    );
    assert!(
        !operator.metrics().contains(password),
        "a metric shows the password"
    );
    let object = serde_json::to_string(&get_lp(namespace, name)).unwrap();
    assert!(!object.contains(password), "the object holds the password");
}

#[test]
fn each_recipient_alone_opens_a_password_iam_holds_and_the_cluster_never_held_it() {
    let ns = TestNamespace::new("deliver-open");
    let operator = Operator::start_with_log_filter(&ns.name, &[], "trace");
    let mut users = TestUsers::default();
    let user = users.create("deliver-open");
    let dir = scratch_dir("deliver-open");
    let (identity, public) = age_key(&dir, "alice.txt");
    let ssh_public = std::fs::read_to_string(format!("{FIXTURE_KEYS}/id_ed25519.pub")).unwrap();
    env().apply_ok(&delivered(
        &ns.name,
        "alice",
        &user,
        json!({"deliverTo": {"ageRecipients": [public, ssh_public.trim()]}}),
    ));
    let lp = wait_delivered(&ns.name, "alice", |e| e["age"].is_string());
    let (_, reason, message) = ready(&lp).unwrap();
    assert_eq!(reason, "Created", "{message}");
    let recorded = &lp["status"]["encryptedPassword"];
    assert_eq!(recorded["recipients"][0], public.as_str());
    assert!(
        recorded["recipients"][1]
            .as_str()
            .unwrap()
            .starts_with("ssh-ed25519 SHA256:"),
        "{recorded}"
    );
    assert_eq!(
        recorded["passwordFingerprint"], lp["status"]["passwordFingerprint"],
        "the ciphertext is of the password status says IAM holds"
    );
    assert_eq!(
        lp["status"]["passwordResetRequired"], true,
        "a delivered password must be replaced at first sign-in by default"
    );
    let armored = ciphertext(&lp);
    assert!(armored.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
    let by_age = age_decrypt(&armored, &identity).expect("the age key opens it");
    let by_ssh = age_decrypt(&armored, Path::new(&format!("{FIXTURE_KEYS}/id_ed25519")))
        .expect("the SSH key opens it");
    assert_eq!(by_age, by_ssh);
    let (stranger, _) = age_key(&dir, "stranger.txt");
    assert!(
        age_decrypt(&armored, &stranger).is_err(),
        "a key that is not a recipient opens it"
    );
    assert_eq!(accepted(&user, "CreateLoginProfile"), 1);
    assert_eq!(accepted(&user, "UpdateLoginProfile"), 0);
    nowhere_in_the_cluster(&ns.name, "alice", &by_age, &operator);
    change_password_as_user(&user, &by_age, &strong_password("alice-own"))
        .expect("IAM holds the delivered password");
}

/// A GnuPG home of the test's own, where the person makes their key pair.
struct Gpg {
    home: PathBuf,
}

impl Gpg {
    fn new(dir: &Path) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let home = dir.join("gnupg");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
        Self { home }
    }

    fn command(&self) -> std::process::Command {
        let mut command = env().command("gpg");
        command.env("GNUPGHOME", &self.home).args([
            "--batch",
            "--no-tty",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
        ]);
        command
    }

    /// `gpg --quick-gen-key` (GnuPG's default: a signing primary key and an
    /// encryption subkey), then `gpg --armor --export`.
    fn new_public_key(&self, user_id: &str) -> String {
        let mut generate = self.command();
        generate.args(["--quick-gen-key", user_id, "default", "default", "never"]);
        stdout_of(generate.output().expect("gpg runs"), "gpg --quick-gen-key");
        let mut export = self.command();
        export.args(["--armor", "--export", user_id]);
        stdout_of(export.output().expect("gpg runs"), "gpg --armor --export")
    }

    fn decrypt(&self, message: &str) -> Result<String, String> {
        let mut command = self.command();
        command.arg("-d");
        let output = run_with_stdin(command, message);
        if output.status.success() {
            Ok(String::from_utf8(output.stdout).expect("utf-8"))
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        // The gpg-agent each home starts would outlive the test.
        let _ = std::process::Command::new("gpgconf")
            .env("GNUPGHOME", &self.home)
            .args(["--kill", "gpg-agent"])
            .status();
    }
}

#[test]
fn an_openpgp_key_and_an_age_key_each_open_the_same_password_iam_holds() {
    let ns = TestNamespace::new("deliver-pgp");
    let operator = Operator::start_with_log_filter(&ns.name, &[], "trace");
    let mut users = TestUsers::default();
    let user = users.create("deliver-pgp");
    let dir = scratch_dir("deliver-pgp");
    let gpg = Gpg::new(&dir);
    let public_key = gpg.new_public_key("Frank <frank@example.invalid>");
    let (identity, age_public) = age_key(&dir, "frank.txt");
    env().apply_ok(&delivered(
        &ns.name,
        "frank",
        &user,
        json!({"deliverTo": {"ageRecipients": [age_public], "pgpPublicKey": public_key}}),
    ));
    let lp = wait_delivered(&ns.name, "frank", |e| e["pgp"].is_string());
    let recorded = &lp["status"]["encryptedPassword"];
    assert!(
        recorded["recipients"][1]
            .as_str()
            .unwrap()
            .starts_with("openpgp "),
        "{recorded}"
    );
    let message = recorded["pgp"].as_str().unwrap();
    assert!(message.starts_with("-----BEGIN PGP MESSAGE-----"));
    let by_gpg = gpg.decrypt(message).expect("gpg -d opens it");
    let by_age = age_decrypt(&ciphertext(&lp), &identity).expect("age -d opens it");
    assert_eq!(by_gpg, by_age, "one password, two envelopes");
    assert_eq!(accepted(&user, "CreateLoginProfile"), 1);
    nowhere_in_the_cluster(&ns.name, "frank", &by_gpg, &operator);
    change_password_as_user(&user, &by_gpg, &strong_password("frank-own"))
        .expect("IAM holds the delivered password");
}

#[test]
fn reissue_and_a_changed_recipient_each_issue_one_new_password() {
    let ns = TestNamespace::new("deliver-reissue");
    let operator = Operator::start(&ns.name, &[]);
    let mut users = TestUsers::default();
    let user = users.create("deliver-re");
    let dir = scratch_dir("deliver-reissue");
    let (old_laptop, old_public) = age_key(&dir, "old.txt");
    let (new_laptop, new_public) = age_key(&dir, "new.txt");
    let apply = |recipient: &str, reissue: Option<&str>| {
        let mut generate = json!({"deliverTo": {"ageRecipients": [recipient]}});
        if let Some(reissue) = reissue {
            generate["reissue"] = json!(reissue);
        }
        env().apply_ok(&delivered(&ns.name, "bob", &user, generate));
    };
    apply(&old_public, None);
    let first = wait_delivered(&ns.name, "bob", |e| e["age"].is_string());
    let created = status_str(&first, "createDate").to_string();
    let first_password = age_decrypt(&ciphertext(&first), &old_laptop).unwrap();

    apply(&old_public, Some("lost-it-1"));
    let second = wait_delivered(&ns.name, "bob", |e| e["reissue"] == "lost-it-1");
    assert_eq!(ready(&second).unwrap().1, "Updated");
    assert_eq!(
        accepted(&user, "UpdateLoginProfile"),
        1,
        "one write per issue"
    );
    let second_password = age_decrypt(&ciphertext(&second), &old_laptop).unwrap();
    assert_ne!(second_password, first_password);

    apply(&new_public, Some("lost-it-1"));
    let third = wait_delivered(&ns.name, "bob", |e| {
        e["recipients"][0] == new_public.as_str()
    });
    assert_eq!(
        accepted(&user, "UpdateLoginProfile"),
        2,
        "one write per issue"
    );
    assert_eq!(accepted(&user, "CreateLoginProfile"), 1, "never replaced");
    assert_eq!(status_str(&third, "createDate"), created, "CreateDate kept");
    assert!(
        age_decrypt(&ciphertext(&third), &old_laptop).is_err(),
        "the old key opens the new password"
    );
    let third_password = age_decrypt(&ciphertext(&third), &new_laptop).unwrap();
    for old in [&first_password, &second_password] {
        assert!(
            change_password_as_user(&user, old, &strong_password("bob-stale")).is_err(),
            "IAM still takes an earlier delivered password"
        );
    }
    // Nothing more to do: no further write while the spec stays.
    holds_for(std::time::Duration::from_secs(3), || {
        assert_eq!(accepted(&user, "UpdateLoginProfile"), 2);
    });
    assert!(!operator.logs().contains(&third_password));
    change_password_as_user(&user, &third_password, &strong_password("bob-own"))
        .expect("IAM holds the password for the new key");
}

#[test]
fn killed_after_iam_accepted_a_delivered_create() {
    let ns = TestNamespace::new("deliver-kill");
    let mut users = TestUsers::default();
    let user = users.create("deliver-kill");
    let dir = scratch_dir("deliver-kill");
    let (identity, public) = age_key(&dir, "carol.txt");
    env().fault(json!({"action": "CreateLoginProfile", "user": user, "mode": "hold"}));
    let first = Operator::start(&ns.name, &[]);
    env().apply_ok(&delivered(
        &ns.name,
        "carol",
        &user,
        json!({"deliverTo": {"ageRecipients": [public]}}),
    ));
    env().wait_held("CreateLoginProfile", &user);
    // IAM holds a password whose ciphertext died with the process.
    first.signal("KILL");
    env().release_held(&user);

    let second = Operator::start(&ns.name, &[]);
    let lp = wait_delivered(&ns.name, "carol", |e| e["age"].is_string());
    assert_eq!(accepted(&user, "CreateLoginProfile"), 1);
    assert_eq!(
        accepted(&user, "UpdateLoginProfile"),
        1,
        "exactly one more write: a new password nobody lost"
    );
    let password = age_decrypt(&ciphertext(&lp), &identity).unwrap();
    assert!(!first.logs().contains(&password) && !second.logs().contains(&password));
    change_password_as_user(&user, &password, &strong_password("carol-own"))
        .expect("after the crash, the ciphertext opens to what IAM holds");
}

#[test]
fn a_bad_recipient_is_refused_with_its_reason_before_any_iam_call() {
    let ns = TestNamespace::new("deliver-bad");
    let _operator = Operator::start(&ns.name, &[]);
    let mut users = TestUsers::default();
    let key = |name: &str| {
        std::fs::read_to_string(format!("{FIXTURE_KEYS}/{name}"))
            .unwrap()
            .trim()
            .to_string()
    };
    let age = |keys: &[String]| json!({"ageRecipients": keys});
    let pgp = |file: &str| json!({"pgpPublicKey": key(file)});
    let cases = [
        (
            "garbage",
            age(&["not-a-key".into()]),
            "ageRecipients[0]",
            "neither",
        ),
        (
            "short-rsa",
            age(&[key("id_rsa1024.pub")]),
            "ageRecipients[0]",
            "shorter than 2048",
        ),
        (
            "ecdsa",
            age(&[key("id_ecdsa.pub")]),
            "ageRecipients[0]",
            "age cannot encrypt to",
        ),
        (
            "twice",
            age(&[key("id_ed25519.pub"), key("id_ed25519.pub")]),
            "ageRecipients[1]",
            "same key as [0]",
        ),
        (
            "pgp-garbage",
            json!({"pgpPublicKey": "not a key"}),
            "pgpPublicKey",
            "ASCII-armored",
        ),
        (
            "pgp-sign-only",
            pgp("pgp-sign-only.asc"),
            "pgpPublicKey",
            "no encryption subkey",
        ),
        (
            "pgp-expired",
            pgp("pgp-expired.asc"),
            "pgpPublicKey",
            "expired at 2024-06-01",
        ),
        (
            "pgp-revoked",
            pgp("pgp-revoked.asc"),
            "pgpPublicKey",
            "is revoked",
        ),
    ];
    let mut named = Vec::new();
    for (name, deliver_to, _, _) in &cases {
        let user = users.create(&format!("deliver-{name}"));
        env().apply_ok(&delivered(
            &ns.name,
            name,
            &user,
            json!({"deliverTo": deliver_to}),
        ));
        named.push(user);
    }
    for ((name, _, which, why), user) in cases.iter().zip(&named) {
        let lp = wait_ready_reason(&ns.name, name, "False", "InvalidRecipient", CONVERGE);
        let (_, _, message) = ready(&lp).unwrap();
        assert!(
            message.contains(which) && message.contains(why),
            "{name}: {message}"
        );
        assert!(condition_true(&lp, "Stalled"), "{name}: Stalled");
        // The only call naming the user is the test's own CreateUser.
        let mut calls = env().iam_calls(user);
        calls.remove("CreateUser");
        assert!(calls.is_empty(), "{name}: IAM was called: {calls:?}");
    }
    // The API server refuses a second password source outright.
    let both = login_profile(
        &ns.name,
        "both",
        json!({"passwordSecretRef": {"name": "s"},
               "generatePassword": {"deliverTo": {"ageRecipients": [key("id_ed25519.pub")]}}}),
    );
    let refused = env().apply(&both);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("exactly one password source"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
