//! The ownership record in IAM (docs/disaster-recovery.md): a login
//! profile's owner is written on the IAM user (tags under
//! `iam.loginprofile.dev/`), so it outlives the cluster. Two operators with
//! their own `--cluster-id`, each watching its own namespace, stand for two
//! clusters on one AWS account; what IAM holds is proved by changing the
//! password as the user, and IAM calls are counted at the emulator. Also
//! the mass-deletion guard, which keeps a deleted namespace or Application
//! from removing every console password at once.

mod support;

use std::{collections::HashMap, time::Duration};

use serde_json::{Value, json};
use support::*;

/// The user's tags under the record's prefix, read with the AWS CLI.
fn record_of(user: &str) -> HashMap<String, String> {
    let tags = env().aws_ok(&["iam", "list-user-tags", "--user-name", user]);
    tags["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|tag| {
            let short = tag["Key"].as_str()?.strip_prefix("iam.loginprofile.dev/")?;
            Some((short.to_string(), tag["Value"].as_str()?.to_string()))
        })
        .collect()
}

/// A Secret with `password` and a LoginProfile `lp-<i>` for each user, in
/// one kubectl call: the same manifests whichever cluster they go to.
fn apply_manifests(namespace: &str, users: &[String], passwords: &[String], extra: Value) {
    let mut manifest = String::new();
    for (i, (user, password)) in users.iter().zip(passwords).enumerate() {
        let name = format!("lp-{i}");
        manifest += &secret(namespace, &name, &[("password", password)]);
        manifest += "\n---\n";
        let mut spec = json!({"userName": user, "passwordSecretRef": {"name": name}});
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().cloned().unwrap_or_default());
        manifest += &login_profile(namespace, &name, spec);
        manifest += "\n---\n";
    }
    env().apply_ok(&manifest);
}

/// `n` new IAM users (named `<prefix>-…-<i>`) and a password for each.
fn users_and_passwords(made: &mut TestUsers, prefix: &str, n: usize) -> (Vec<String>, Vec<String>) {
    let users = made.create_many(&unique(prefix), n);
    let passwords = (0..n)
        .map(|i| strong_password(&format!("{prefix}{i}")))
        .collect();
    (users, passwords)
}

/// A namespace that only an IAMAccount of the test's own admits (any
/// user): its LoginProfiles name it in `accountRef`, and changing it
/// touches no other test.
fn namespace_with_its_own_account(prefix: &str) -> (TestNamespace, String, TestAccounts) {
    let account = unique(prefix).to_lowercase();
    let ns = TestNamespace::with_account(prefix, None);
    env().apply_ok(&iam_account(
        &account,
        json!({"namespaces": [ns.name], "userNames": ["*"]}),
    ));
    (ns, account.clone(), TestAccounts(vec![account]))
}

/// Every user signs in with its password (and changes it, as at a first
/// sign-in).
fn everyone_signs_in(users: &[String], passwords: &[String]) {
    sign_in_all(
        &users
            .iter()
            .cloned()
            .zip(passwords.iter().cloned())
            .collect(),
    );
}

/// A new password in Secret `name`: waits until it is applied and the
/// user's record names it; returns it.
fn rotate_and_wait_for_the_record(namespace: &str, name: &str, user: &str, tag: &str) -> String {
    let rotated = strong_password(tag);
    env().apply_ok(&secret(namespace, name, &[("password", &rotated)]));
    wait_ready_reason(namespace, name, "True", "Updated", CONVERGE);
    wait_until("the record to name the new password", CONVERGE, || {
        record_of(user)["password"] == status_str(&get_lp(namespace, name), "passwordFingerprint")
    });
    rotated
}

/// The calls that change a login profile or its record.
fn changing_calls(user: &str) -> [u64; 3] {
    [
        calls(user, "UpdateLoginProfile"),
        calls(user, "DeleteLoginProfile"),
        calls(user, "TagUser"),
    ]
}

/// What losing a cluster leaves of `namespace`: no LoginProfile (their
/// finalizers dropped, as when etcd is gone), no Secret `lp-<i>`, no status.
/// IAM keeps every profile and its record.
fn lose_login_profiles_and_secrets(namespace: &str, n: usize) {
    for i in 0..n {
        env().kubectl_ok(&[
            "patch",
            "loginprofile",
            &format!("lp-{i}"),
            "-n",
            namespace,
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":null}}"#,
        ]);
    }
    env().kubectl_ok(&[
        "delete",
        "loginprofile",
        "--all",
        "-n",
        namespace,
        "--wait=true",
    ]);
    let secrets: Vec<String> = (0..n).map(|i| format!("lp-{i}")).collect();
    let mut delete = vec!["delete", "secret", "-n", namespace];
    delete.extend(secrets.iter().map(String::as_str));
    env().kubectl_ok(&delete);
}

#[test]
fn a_rebuild_with_another_fingerprint_key_writes_nothing_until_the_source_changes() {
    let ns = TestNamespace::new("own-newkey");
    let mut made = TestUsers::default();
    let (users, passwords) = users_and_passwords(&mut made, "own-nk", 2);
    let blue = Operator::start(&ns.name, &["--cluster-id", "blue-k"]);
    apply_manifests(&ns.name, &users, &passwords, json!({}));
    wait_all_ready(&ns.name, users.len(), CONVERGE);
    blue.stop();
    lose_login_profiles_and_secrets(&ns.name, users.len());
    // The key was lost with the cluster: the rebuilt one makes a new one.
    env().kubectl_ok(&[
        "delete",
        "secret",
        "loginprofile-operator-fingerprint-key",
        "-n",
        &ns.name,
    ]);
    let before: Vec<[u64; 3]> = users.iter().map(|u| changing_calls(u)).collect();
    apply_manifests(&ns.name, &users, &passwords, json!({}));
    let _rebuilt = Operator::start(&ns.name, &["--cluster-id", "blue-k"]);
    for lp in wait_all_ready(&ns.name, users.len(), CONVERGE) {
        let (_, reason, message) = ready(&lp).unwrap();
        assert_eq!(reason, "Recognized", "{message}");
        assert!(
            message.contains("nothing is sent until the source changes"),
            "{message}"
        );
    }
    holds_for(Duration::from_secs(3), || {
        let after: Vec<[u64; 3]> = users.iter().map(|u| changing_calls(u)).collect();
        assert_eq!(after, before, "no password and no record written");
    });
    everyone_signs_in(&users, &passwords);
    // The source's next change is sent, and recorded under the new key.
    let rotated = rotate_and_wait_for_the_record(&ns.name, "lp-0", &users[0], "nk-rot");
    assert_eq!(calls(&users[0], "UpdateLoginProfile"), before[0][0] + 1);
    change_password_as_user(&users[0], &rotated, &strong_password("nk-after"))
        .expect("IAM holds the Secret's new password");
}

#[test]
fn a_create_writes_the_record_and_a_rebuilt_cluster_takes_its_profiles_back_with_no_write() {
    let ns = TestNamespace::new("own-rebuild");
    let mut made = TestUsers::default();
    let (users, passwords) = users_and_passwords(&mut made, "own-rb", 20);
    let blue = Operator::start(&ns.name, &["--cluster-id", "blue"]);
    apply_manifests(&ns.name, &users, &passwords, json!({}));
    let first = wait_all_ready(&ns.name, users.len(), CONVERGE);

    // A create costs two writes: the profile and its record.
    for (i, user) in users.iter().enumerate() {
        assert_eq!(calls(user, "CreateLoginProfile"), 1, "{user}");
        assert_eq!(calls(user, "TagUser"), 1, "{user}");
        let lp = first
            .iter()
            .find(|lp| lp["spec"]["userName"] == json!(user))
            .unwrap();
        let record = record_of(user);
        assert_eq!(record["owner"], "blue");
        assert_eq!(record["namespace"], ns.name);
        assert_eq!(record["name"], format!("lp-{i}"));
        assert_eq!(record["password"], status_str(lp, "passwordFingerprint"));
        assert_eq!(record["profile-created"], status_str(lp, "createDate"));
        assert_eq!(lp["status"]["ownerRecord"]["clusterId"], "blue");
        assert!(
            !record.values().any(|v| passwords.contains(v)),
            "the record never holds the password"
        );
    }
    let created: HashMap<String, String> = first
        .iter()
        .map(|lp| {
            (
                lp["spec"]["userName"].as_str().unwrap().to_string(),
                status_str(lp, "createDate").to_string(),
            )
        })
        .collect();

    // The first person changes the password at the first sign-in.
    let mine = strong_password("mine");
    change_password_as_user(&users[0], &passwords[0], &mine).expect("the Secret's password");

    // The cluster is lost: no LoginProfile, no Secret, no status is left;
    // IAM keeps every profile (and its record).
    blue.stop();
    lose_login_profiles_and_secrets(&ns.name, users.len());
    let before: Vec<[u64; 3]> = users.iter().map(|u| changing_calls(u)).collect();

    // Rebuilt from the same manifests, with the same cluster id and key.
    apply_manifests(&ns.name, &users, &passwords, json!({}));
    let rebuilt = Operator::start(&ns.name, &["--cluster-id", "blue"]);
    let taken_back = wait_all_ready(&ns.name, users.len(), CONVERGE);
    for lp in &taken_back {
        let (_, reason, message) = ready(lp).unwrap();
        assert_eq!(reason, "Recognized", "{message}");
        let user = lp["spec"]["userName"].as_str().unwrap();
        assert_eq!(status_str(lp, "createDate"), created[user]);
    }
    holds_for(Duration::from_secs(3), || {
        let after: Vec<[u64; 3]> = users.iter().map(|u| changing_calls(u)).collect();
        assert_eq!(after, before, "no profile or record written");
    });
    for user in &users {
        // Create-first found each profile there (a refused create changes
        // nothing), and the profile is the one made before the rebuild.
        assert_eq!(calls(user, "CreateLoginProfile"), 2, "{user}");
        let profile = iam_profile(user).unwrap();
        assert_eq!(
            seconds(profile["LoginProfile"]["CreateDate"].as_str().unwrap()),
            seconds(&created[user])
        );
    }
    // The person keeps the password chosen at sign-in; the others still
    // have their Secret's.
    change_password_as_user(&users[0], &mine, &strong_password("mine2"))
        .expect("IAM still holds the password the person chose");
    everyone_signs_in(&users[1..], &passwords[1..]);

    // Taken back means managed: a rotation is one password write and one
    // record write.
    let rotated = rotate_and_wait_for_the_record(&ns.name, "lp-1", &users[1], "rb-rot");
    assert_eq!(calls(&users[1], "UpdateLoginProfile"), 1);
    assert_eq!(calls(&users[1], "TagUser"), 2);
    change_password_as_user(&users[1], &rotated, &strong_password("rb-after"))
        .expect("IAM holds the rotated password");
    drop(rebuilt);
}

#[test]
fn a_second_cluster_neither_writes_nor_deletes_the_first_clusters_profiles() {
    let first = TestNamespace::new("own-blue");
    let second = TestNamespace::new("own-green");
    let mut made = TestUsers::default();
    let (users, passwords) = users_and_passwords(&mut made, "own-2c", 3);
    let _blue = Operator::start(&first.name, &["--cluster-id", "blue"]);
    apply_manifests(&first.name, &users, &passwords, json!({}));
    wait_all_ready(&first.name, users.len(), CONVERGE);
    let before: Vec<[u64; 3]> = users.iter().map(|u| changing_calls(u)).collect();

    // The same manifests on another cluster, even with adoption asked for
    // (the test environment's IAMAccount allows it).
    let _green = Operator::start(&second.name, &["--cluster-id", "green"]);
    let others: Vec<String> = (0..users.len())
        .map(|i| strong_password(&format!("green{i}")))
        .collect();
    apply_manifests(
        &second.name,
        &users,
        &others,
        json!({"adoptionPolicy": "Adopt"}),
    );
    for i in 0..users.len() {
        let lp = wait_ready_reason(
            &second.name,
            &format!("lp-{i}"),
            "False",
            "OwnedElsewhere",
            CONVERGE,
        );
        let (_, _, message) = ready(&lp).unwrap();
        assert!(message.contains("\"blue\""), "{message}");
        assert!(lp["status"]["passwordFingerprint"].is_null());
    }
    holds_for(Duration::from_secs(3), || {
        let after: Vec<[u64; 3]> = users.iter().map(|u| changing_calls(u)).collect();
        assert_eq!(after, before, "nothing written from the second cluster");
    });

    // Its deletions delete nothing.
    env().kubectl_ok(&[
        "delete",
        "loginprofile",
        "--all",
        "-n",
        &second.name,
        "--wait=true",
        "--timeout=60s",
    ]);
    for user in &users {
        assert_eq!(calls(user, "DeleteLoginProfile"), 0, "{user}");
        assert_eq!(record_of(user)["owner"], "blue");
    }
    everyone_signs_in(&users, &passwords);
}

#[test]
fn a_handoff_moves_ownership_without_a_password_write_and_the_old_cluster_stops() {
    // Both clusters are given the same fingerprint key, from outside (a
    // password-keeping handoff needs it: docs/disaster-recovery.md).
    let key_file = std::path::Path::new(ROOT)
        .join("target/test-logs")
        .join(unique("handoff-key"));
    std::fs::create_dir_all(key_file.parent().unwrap()).unwrap();
    std::fs::write(&key_file, unique("shared-fingerprint-key-material")).unwrap();
    let key = key_file.to_str().unwrap();

    let blue_ns = TestNamespace::new("own-hblue");
    let (green_ns, account, _accounts) = namespace_with_its_own_account("own-hgreen");
    let mut made = TestUsers::default();
    let (users, passwords) = users_and_passwords(&mut made, "own-ho", 3);
    let _blue = Operator::start(
        &blue_ns.name,
        &["--cluster-id", "blue-h", "--fingerprint-key-file", key],
    );
    apply_manifests(&blue_ns.name, &users, &passwords, json!({}));
    wait_all_ready(&blue_ns.name, users.len(), CONVERGE);

    // Green, with the same manifests: the profiles are blue's until the
    // admin hands them over.
    let _green = Operator::start(
        &green_ns.name,
        &["--cluster-id", "green-h", "--fingerprint-key-file", key],
    );
    apply_manifests(
        &green_ns.name,
        &users,
        &passwords,
        json!({"accountRef": {"name": account}}),
    );
    for i in 0..users.len() {
        wait_ready_reason(
            &green_ns.name,
            &format!("lp-{i}"),
            "False",
            "OwnedElsewhere",
            CONVERGE,
        );
    }
    let before: Vec<[u64; 2]> = users
        .iter()
        .map(|u| [calls(u, "UpdateLoginProfile"), calls(u, "TagUser")])
        .collect();
    env().apply_ok(&iam_account(
        &account,
        json!({"namespaces": [green_ns.name], "userNames": ["*"], "takeOwnershipFrom": ["blue-h"]}),
    ));
    for i in 0..users.len() {
        wait_ready_reason(
            &green_ns.name,
            &format!("lp-{i}"),
            "True",
            "HandedOver",
            CONVERGE,
        );
    }
    for (user, [updates, tags]) in users.iter().zip(&before) {
        assert_eq!(record_of(user)["owner"], "green-h");
        assert_eq!(
            calls(user, "UpdateLoginProfile"),
            *updates,
            "no password sent: the Secrets match"
        );
        assert_eq!(calls(user, "TagUser"), tags + 1, "one record write");
    }

    // Blue stops: its next rotation reads the record and writes nothing,
    // and its deletions delete nothing.
    env().apply_ok(&secret(
        &blue_ns.name,
        "lp-0",
        &[("password", &strong_password("blue-late"))],
    ));
    wait_ready_reason(&blue_ns.name, "lp-0", "False", "OwnedElsewhere", CONVERGE);
    env().kubectl_ok(&[
        "delete",
        "loginprofile",
        "--all",
        "-n",
        &blue_ns.name,
        "--wait=true",
        "--timeout=60s",
    ]);
    for (user, [updates, _]) in users.iter().zip(&before) {
        assert_eq!(calls(user, "UpdateLoginProfile"), *updates, "{user}");
        assert_eq!(calls(user, "DeleteLoginProfile"), 0, "{user}");
    }
    // People keep their passwords; green now manages them.
    everyone_signs_in(&users, &passwords);
    let rotated = strong_password("green-rot");
    env().apply_ok(&secret(&green_ns.name, "lp-1", &[("password", &rotated)]));
    wait_ready_reason(&green_ns.name, "lp-1", "True", "Updated", CONVERGE);
    change_password_as_user(&users[1], &rotated, &strong_password("green-after"))
        .expect("green set the new password");
    let _ = std::fs::remove_file(&key_file);
}

#[test]
fn a_migration_adopts_profiles_made_elsewhere_keeping_every_password() {
    let ns = TestNamespace::new("own-migrate");
    let mut users = TestUsers::default();
    let users = users.create_many(&unique("own-mg"), 3);
    // Made the way each tool makes them: the AWS CLI by hand, and the
    // CreateLoginProfile that Terraform's aws_iam_user_login_profile (and
    // Crossplane's UserLoginProfile, generated from it) sends, with its
    // default password_reset_required = true. Each person then chose a
    // password at the first sign-in.
    let mut chosen = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let first = strong_password(&format!("tool{i}"));
        let mut args = vec![
            "iam",
            "create-login-profile",
            "--user-name",
            user,
            "--password",
            &first,
        ];
        if i > 0 {
            args.push("--password-reset-required");
        }
        env().aws_ok(&args);
        let mine = strong_password(&format!("mine{i}"));
        change_password_as_user(user, &first, &mine).expect("the tool's password");
        chosen.push(mine);
    }
    let secrets: Vec<String> = (0..users.len())
        .map(|i| strong_password(&format!("mg{i}")))
        .collect();
    let _operator = Operator::start(&ns.name, &["--cluster-id", "migrate"]);
    apply_manifests(
        &ns.name,
        &users,
        &secrets,
        json!({"adoptionPolicy": "AdoptKeepingPassword"}),
    );
    let adopted = wait_all_ready(&ns.name, users.len(), CONVERGE);
    for lp in &adopted {
        let (_, reason, message) = ready(lp).unwrap();
        assert_eq!(reason, "Adopted", "{message}");
        assert!(message.contains("kept its password"), "{message}");
    }
    holds_for(Duration::from_secs(3), || {
        for user in &users {
            assert_eq!(
                calls(user, "UpdateLoginProfile"),
                0,
                "{user}: no password sent"
            );
            assert_eq!(calls(user, "TagUser"), 1, "{user}: the record, once");
        }
    });
    for user in &users {
        assert_eq!(record_of(user)["owner"], "migrate");
    }
    // Everyone keeps the password they chose.
    everyone_signs_in(&users, &chosen);

    // From the source's next change on, the Secret is the truth: one write.
    let rotated = strong_password("mg-rot");
    env().apply_ok(&secret(&ns.name, "lp-0", &[("password", &rotated)]));
    wait_ready_reason(&ns.name, "lp-0", "True", "Updated", CONVERGE);
    assert_eq!(calls(&users[0], "UpdateLoginProfile"), 1);
    change_password_as_user(&users[0], &rotated, &strong_password("mg-after"))
        .expect("IAM holds the Secret's new password");
    assert_eq!(calls(&users[1], "UpdateLoginProfile"), 0);
}

#[test]
fn a_rebuild_keeps_a_delivered_password_and_issues_a_new_one_only_when_asked() {
    let ns = TestNamespace::new("own-deliver");
    let mut users = TestUsers::default();
    let user = users.create("own-dl");
    let dir = scratch_dir("own-deliver");
    let (identity, public) = age_key(&dir, "dana.txt");
    let manifest = |reissue: Option<&str>| {
        let mut generate = json!({"deliverTo": {"ageRecipients": [public]}});
        if let Some(reissue) = reissue {
            generate["reissue"] = json!(reissue);
        }
        login_profile(
            &ns.name,
            "dana",
            json!({"userName": user, "generatePassword": generate}),
        )
    };
    let blue = Operator::start(&ns.name, &["--cluster-id", "blue-d"]);
    env().apply_ok(&manifest(None));
    let first = wait_ready_reason(&ns.name, "dana", "True", "Created", CONVERGE);
    let password = age_decrypt(
        first["status"]["encryptedPassword"]["age"]
            .as_str()
            .unwrap(),
        &identity,
    )
    .unwrap();
    blue.stop();
    env().kubectl_ok(&[
        "patch",
        "loginprofile",
        "dana",
        "-n",
        &ns.name,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    env().kubectl_ok(&[
        "delete",
        "loginprofile",
        "dana",
        "-n",
        &ns.name,
        "--wait=true",
    ]);
    let updates = calls(&user, "UpdateLoginProfile");

    env().apply_ok(&manifest(None));
    let rebuilt = Operator::start(&ns.name, &["--cluster-id", "blue-d"]);
    let lp = wait_ready_reason(&ns.name, "dana", "True", "Recognized", CONVERGE);
    let (_, _, message) = ready(&lp).unwrap();
    assert!(message.contains("generatePassword.reissue"), "{message}");
    assert!(lp["status"]["encryptedPassword"]["age"].is_null());
    holds_for(Duration::from_secs(3), || {
        assert_eq!(
            calls(&user, "UpdateLoginProfile"),
            updates,
            "nothing re-issued unasked"
        );
    });
    change_password_as_user(&user, &password, &strong_password("dana-own"))
        .expect("the delivered password still works");

    // Asked for a new one: issued, and it opens to what IAM holds.
    env().apply_ok(&manifest(Some("2")));
    let reissued = wait_for("a new ciphertext", CONVERGE, || {
        let lp = get_lp(&ns.name, "dana");
        lp["status"]["encryptedPassword"]["age"]
            .as_str()
            .map(str::to_string)
    });
    assert_eq!(calls(&user, "UpdateLoginProfile"), updates + 1);
    let new_password = age_decrypt(&reissued, &identity).unwrap();
    assert!(!rebuilt.logs().contains(&new_password));
    change_password_as_user(&user, &new_password, &strong_password("dana-new"))
        .expect("IAM holds the re-issued password");
}

#[test]
fn a_lost_record_write_or_a_crash_before_it_ends_with_the_record_and_no_extra_password_write() {
    let ns = TestNamespace::new("own-faults");
    let mut users = TestUsers::default();
    let lost = users.create("own-lost");
    let killed = users.create("own-kill");
    let (lost_pw, killed_pw) = (strong_password("lost"), strong_password("kill"));
    // Every attempt of the first TagUser is applied, and its answer lost.
    env().fault(json!({
        "action": "TagUser", "user": lost, "mode": "lost",
        "code": "ServiceFailure", "status": 500, "count": 3,
    }));
    // The other's TagUser is applied and its answer held while the operator
    // is killed: after the password write, before status records anything.
    env().fault(json!({"action": "TagUser", "user": killed, "mode": "hold"}));
    let first = Operator::start(&ns.name, &["--cluster-id", "faulty"]);
    let apply = |name: &str, user: &str, password: &str| {
        env().apply_ok(&secret(&ns.name, name, &[("password", password)]));
        env().apply_ok(&login_profile(
            &ns.name,
            name,
            json!({"userName": user, "passwordSecretRef": {"name": name}}),
        ));
    };
    apply("lost", &lost, &lost_pw);
    wait_until("the lost record to be written again", CONVERGE, || {
        get_lp(&ns.name, "lost")["status"]["ownerRecord"]["clusterId"] == "faulty"
    });
    assert!(
        first.logs().contains("the ownership record on IAM user"),
        "the failed record write was reported"
    );
    apply("killed", &killed, &killed_pw);
    env().wait_held("TagUser", &killed);
    first.signal("KILL");
    env().release_held(&killed);
    let second = Operator::start(&ns.name, &["--cluster-id", "faulty"]);

    for (name, user, password) in [("lost", &lost, &lost_pw), ("killed", &killed, &killed_pw)] {
        let lp = wait_for(&format!("{name}: Ready with its record"), CONVERGE, || {
            let lp = get_lp(&ns.name, name);
            let ready = ready(&lp).is_some_and(|(status, _, _)| status == "True");
            (ready && lp["status"]["ownerRecord"]["clusterId"] == "faulty").then_some(lp)
        });
        let record = record_of(user);
        assert_eq!(record["owner"], "faulty");
        assert_eq!(record["name"], name);
        assert_eq!(record["password"], status_str(&lp, "passwordFingerprint"));
        let accepted = env().accepted(user);
        assert_eq!(accepted.get("CreateLoginProfile"), Some(&1), "{name}");
        assert_eq!(
            accepted.get("UpdateLoginProfile"),
            None,
            "{name}: no extra password write"
        );
        change_password_as_user(user, password, &strong_password("after"))
            .expect("IAM holds the Secret's password");
    }
    assert!(
        calls(&lost, "TagUser") >= 4,
        "the lost record was written again"
    );
    drop(second);
}

#[test]
fn a_mass_deletion_is_paced_until_a_cluster_admin_confirms_it() {
    let (ns, account, _accounts) = namespace_with_its_own_account("own-guard");
    let mut made = TestUsers::default();
    let (users, passwords) = users_and_passwords(&mut made, "own-gd", 30);
    let operator = Operator::start(
        &ns.name,
        &["--deletion-limit", "5", "--deletion-window", "1h"],
    );
    apply_manifests(
        &ns.name,
        &users,
        &passwords,
        json!({"accountRef": {"name": account}}),
    );
    wait_all_ready(&ns.name, users.len(), CONVERGE);
    let deleted = || -> u64 { users.iter().map(|u| calls(u, "DeleteLoginProfile")).sum() };

    // The whole namespace goes, as in a mistaken Application deletion.
    env().kubectl_ok(&["delete", "namespace", &ns.name, "--wait=false"]);
    wait_until("25 deletions held", CONVERGE, || {
        list_lps(&ns.name)
            .iter()
            .filter(|lp| ready(lp).is_some_and(|(_, reason, _)| reason == "DeletionPaced"))
            .count()
            == 25
    });
    holds_for(Duration::from_secs(3), || {
        assert_eq!(deleted(), 5, "the limit, no more");
    });
    let held = list_lps(&ns.name);
    let (_, _, message) = ready(&held[0]).unwrap();
    assert!(message.contains("allowDeletionsUntil"), "{message}");
    assert!(
        operator
            .metrics()
            .contains(r#"loginprofile_profiles{condition="deletion_paced"} 25"#),
        "the alert's metric"
    );
    let kept = users.iter().filter(|u| iam_profile(u).is_ok()).count();
    assert_eq!(kept, 25, "the held ones still have their console password");

    // A cluster admin confirms, with the runbook's command: the rest go at once.
    let until = (chrono::Utc::now() + chrono::Duration::minutes(10))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    env().kubectl_ok(&[
        "patch",
        "iamaccount",
        &account,
        "--type=merge",
        "-p",
        &json!({"spec": {"allowDeletionsUntil": until}}).to_string(),
    ]);
    wait_until("every LoginProfile gone", CONVERGE, || {
        list_lps(&ns.name).is_empty()
    });
    assert_eq!(deleted(), 30);
    assert!(users.iter().all(|u| no_such_profile(iam_profile(u))));
}
