//! Console-access governance (docs/governance.md) against the real API
//! server and the corrected emulator. Each test works in an AWS account of
//! its own, whose clock it moves forward (so rules over days run in
//! seconds without touching other tests), and reads results back the way a
//! person would: kubectl for status and Events, the AWS CLI in that account
//! for the login profile, the emulator's counters for IAM calls.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;

const DAY: u64 = 24 * 3600;

/// An AWS account of the emulator, an IAMAccount admitting one namespace
/// there (with governance `floor`), and an operator watching that namespace.
struct Governed {
    own: OwnAccount,
    _operator: Operator,
}

impl std::ops::Deref for Governed {
    type Target = OwnAccount;

    fn deref(&self) -> &OwnAccount {
        &self.own
    }
}

impl Governed {
    fn new(prefix: &str, floor: Option<Value>) -> Self {
        Self::with_report_interval(prefix, floor, "1s")
    }

    fn with_report_interval(prefix: &str, floor: Option<Value>, interval: &str) -> Self {
        let own = OwnAccount::new(
            prefix,
            floor.map_or_else(|| json!({}), |floor| json!({"governance": floor})),
        );
        let operator = Operator::start(
            own.ns(),
            &[
                "--resync-period",
                "2s",
                "--credential-report-interval",
                interval,
            ],
        );
        own.wait_verified();
        Self {
            own,
            _operator: operator,
        }
    }

    /// A Secret holding `password` (unless the spec generates one) and a
    /// LoginProfile for `user` in this account.
    fn apply(&self, name: &str, user: &str, password: Option<&str>, extra: Value) {
        if let Some(password) = password {
            env().apply_ok(&secret(self.ns(), name, &[("password", password)]));
        }
        let mut spec = json!({
            "userName": user,
            "accountRef": {"name": self.iam_account},
            "passwordSecretRef": {"name": name},
        });
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().cloned().unwrap_or_default());
        env().apply_ok(&login_profile(self.ns(), name, spec));
    }

    fn has_login_profile(&self, user: &str) -> bool {
        env()
            .aws_in(&self.id, &["iam", "get-login-profile", "--user-name", user])
            .is_ok()
    }

    /// An account password policy with MaxPasswordAge 90.
    fn passwords_expire_after_90_days(&self) {
        self.aws(&[
            "iam",
            "update-account-password-policy",
            "--minimum-password-length",
            "14",
            "--max-password-age",
            "90",
        ]);
    }

    /// The documented human act: a new `governance.reenable` value.
    fn reenable(&self, name: &str, token: &str) {
        let patch = json!({"spec": {"governance": {"reenable": token}}}).to_string();
        env().kubectl_ok(&[
            "patch",
            "loginprofile",
            name,
            "-n",
            self.ns(),
            "--type=merge",
            "-p",
            &patch,
        ]);
    }

    /// The start of the person's MFA grace as the operator recorded it on
    /// the IAM user, read back with the AWS CLI.
    fn grace_start(&self, user: &str) -> Option<String> {
        let tags = self.aws(&["iam", "list-user-tags", "--user-name", user]);
        tags["Tags"]
            .as_array()?
            .iter()
            .find(|tag| tag["Key"] == "iam.loginprofile.dev/floor-since")
            .and_then(|tag| tag["Value"].as_str())
            .map(str::to_string)
    }

    fn advance_days(&self, days: u64) {
        env().advance_clock(&self.id, days * DAY);
    }

    /// IAM makes a new credential report only once the last is over 4
    /// hours old (the first may predate a password just set): move the
    /// account's clock past that.
    fn allow_a_new_report(&self) {
        env().advance_clock(&self.id, 4 * 3600 + 60);
    }

    /// The operator's report is at most a second old; IAM's is new once
    /// the account's clock moved over 4 hours: wait for the one made after
    /// `after` (RFC 3339) to reach status.
    fn wait_report_after(&self, name: &str, after: &str) -> Value {
        wait_for(
            &format!("a credential report newer than {after} in {name}'s status"),
            CONVERGE,
            || {
                let lp = get_lp(self.ns(), name);
                let at = lp["status"]["console"]["reportGeneratedAt"].as_str()?;
                (seconds(at) > seconds(after)).then_some(lp)
            },
        )
    }
}

fn wait_condition(ns: &str, name: &str, type_: &str, status: &str, reason: &str) -> Value {
    wait_for(
        &format!("{ns}/{name} {type_}={status} {reason}"),
        CONVERGE,
        || {
            let lp = get_lp(ns, name);
            let (s, r, _) = condition(&lp, type_)?;
            (s == status && r == reason).then_some(lp)
        },
    )
}

fn report_time(lp: &Value) -> String {
    lp["status"]["console"]["reportGeneratedAt"]
        .as_str()
        .expect("status.console.reportGeneratedAt")
        .to_string()
}

#[test]
fn missing_mfa_is_reported_then_disables_console_access_until_a_person_re_enables_it() {
    // The IAMAccount's floor is stricter than what the LoginProfile asks.
    let g = Governed::new(
        "gov-mfa",
        Some(json!({"mfa": {"requiredWithin": "7d", "action": "DisableConsole"}})),
    );
    let user = g.create_user("gov-mfa");
    g.apply(
        "ann",
        &user,
        Some(&strong_password("ann")),
        json!({"governance": {"mfa": {"requiredWithin": "30d", "action": "Report"}}}),
    );
    wait_ready_reason(g.ns(), "ann", "True", "Created", CONVERGE);
    let lp = wait_condition(g.ns(), "ann", "MFAActive", "False", "MFAGracePeriod");
    let console = &lp["status"]["console"];
    assert_eq!(console["mfaActive"], false, "{console}");
    let rules = console["rules"].as_str().unwrap();
    assert!(
        rules.contains("mfa: DisableConsole after 7d (IAMAccount)")
            && rules.contains("is looser than its IAMAccount's"),
        "status says the stricter rule applies: {rules}"
    );
    assert!(
        condition_true(&lp, "Ready"),
        "governance leaves Ready alone"
    );
    let first = report_time(&lp);

    // Eight days on, still no MFA: the login profile is deleted.
    g.advance_days(8);
    let lp = wait_ready_reason(g.ns(), "ann", "False", "ConsoleDisabled", CONVERGE);
    assert!(seconds(&report_time(&lp)) > seconds(&first));
    assert!(condition_true(&lp, "Stalled"), "{lp}");
    let message = ready(&lp).unwrap().2;
    assert!(
        message.contains("mfa rule") && message.contains("spec.governance.reenable"),
        "{message}"
    );
    assert_eq!(lp["status"]["console"]["disabled"]["rule"], "mfa");
    assert_eq!(condition(&lp, "MFAActive").unwrap().1, "NoMFA");
    assert!(!g.has_login_profile(&user), "console access is off");
    g.aws(&["iam", "get-user", "--user-name", &user]);
    assert!(
        events(g.ns(), "ann")
            .iter()
            .any(|e| e["reason"] == "ConsoleDisabled"),
        "an Event says so"
    );
    // Nothing re-creates it by itself.
    holds_for(Duration::from_secs(5), || {
        assert!(!g.has_login_profile(&user), "re-created without a person");
    });
    assert_eq!(calls(&user, "CreateLoginProfile"), 1);
    assert_eq!(calls(&user, "DeleteLoginProfile"), 1);

    // The grace counts from the first profile, recorded on the IAM user
    // where a tenant cannot write; status shows the same time.
    let first_start = g
        .grace_start(&user)
        .expect("the grace's start recorded on the IAM user");
    assert_eq!(lp["status"]["console"]["floorSince"], first_start.as_str());

    // Under the IAMAccount's rule the tenant cannot restart the grace: a
    // new reenable value makes no profile, and says what would.
    g.reenable("ann", "ticket-42");
    let lp = wait_for("the re-enable refused", CONVERGE, || {
        let lp = get_lp(g.ns(), "ann");
        (lp["status"]["console"]["disabled"]["reenable"] == "ticket-42").then_some(lp)
    });
    let (status, reason, message) = ready(&lp).unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "ConsoleDisabled")
    );
    assert!(
        message.contains("does not restart the grace")
            && message.contains("iam.loginprofile.dev/floor-since"),
        "{message}"
    );
    // Nor does the object deleted and made again.
    env().kubectl_ok(&["delete", "loginprofile", "ann", "-n", g.ns(), "--wait=true"]);
    g.apply("ann", &user, None, json!({}));
    let lp = wait_ready_reason(g.ns(), "ann", "False", "ConsoleDisabled", CONVERGE);
    assert_eq!(lp["status"]["console"]["floorSince"], first_start.as_str());
    holds_for(Duration::from_secs(3), || {
        assert!(!g.has_login_profile(&user), "made again by a tenant's act");
        assert_eq!(calls(&user, "CreateLoginProfile"), 1);
    });

    // The administrator's act: the record removed, then a re-enable makes
    // the profile once, and its grace starts anew (recorded again).
    g.aws(&[
        "iam",
        "untag-user",
        "--user-name",
        &user,
        "--tag-keys",
        "iam.loginprofile.dev/floor-since",
    ]);
    g.reenable("ann", "ticket-43");
    wait_ready_reason(g.ns(), "ann", "True", "Created", CONVERGE);
    assert!(g.has_login_profile(&user));
    holds_for(Duration::from_secs(4), || {
        assert!(
            condition_true(&get_lp(g.ns(), "ann"), "Ready"),
            "a re-enabled profile gets a new grace period"
        );
    });
    assert_eq!(calls(&user, "CreateLoginProfile"), 2);
    let second_start = g.grace_start(&user).expect("recorded again");
    assert!(seconds(&second_start) > seconds(&first_start));

    // MFA enabled: the next report says so.
    let seed = std::env::temp_dir().join(format!("{user}-mfa-seed"));
    let device = g.aws(&[
        "iam",
        "create-virtual-mfa-device",
        "--virtual-mfa-device-name",
        &user,
        "--bootstrap-method",
        "Base32StringSeed",
        "--outfile",
        seed.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&seed);
    let serial = device["VirtualMFADevice"]["SerialNumber"].as_str().unwrap();
    g.aws(&[
        "iam",
        "enable-mfa-device",
        "--user-name",
        &user,
        "--serial-number",
        serial,
        "--authentication-code1",
        "123456",
        "--authentication-code2",
        "654321",
    ]);
    let before = report_time(&get_lp(g.ns(), "ann"));
    g.advance_days(1);
    g.wait_report_after("ann", &before);
    let lp = wait_condition(g.ns(), "ann", "MFAActive", "True", "MFAActive");
    assert_eq!(lp["status"]["console"]["mfaActive"], true);
    assert!(condition_true(&lp, "Ready"));
}

/// A tenant parks its object after the operator made its profile (it asks
/// for adoption, which its IAMAccount does not allow, so it is refused):
/// the IAMAccount's MFA rule still turns console access off.
#[test]
fn a_parked_login_profile_stays_under_the_iam_accounts_mfa_rule() {
    let g = Governed::new(
        "gov-park",
        Some(json!({"mfa": {"requiredWithin": "7d", "action": "DisableConsole"}})),
    );
    let user = g.create_user("gov-park");
    g.apply("ann", &user, Some(&strong_password("ann")), json!({}));
    wait_ready_reason(g.ns(), "ann", "True", "Created", CONVERGE);
    let patch = json!({"spec": {"adoptionPolicy": "Adopt"}}).to_string();
    env().kubectl_ok(&[
        "patch",
        "loginprofile",
        "ann",
        "-n",
        g.ns(),
        "--type=merge",
        "-p",
        &patch,
    ]);
    wait_ready_reason(g.ns(), "ann", "False", "NotAdmitted", CONVERGE);
    assert!(g.has_login_profile(&user), "parking alone deletes nothing");

    g.advance_days(8);
    let lp = wait_for("console access disabled while parked", CONVERGE, || {
        let lp = get_lp(g.ns(), "ann");
        (lp["status"]["console"]["disabled"]["rule"] == "mfa").then_some(lp)
    });
    assert!(
        lp["status"]["console"]["disabled"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no active MFA device")),
        "{lp}"
    );
    assert!(!g.has_login_profile(&user), "console access is off");
    assert_eq!(calls(&user, "DeleteLoginProfile"), 1);
}

/// While console access is off, an admin gives the person a console
/// password of their own: the re-enable that follows takes nothing over.
#[test]
fn a_profile_made_while_console_access_is_off_is_not_taken_at_re_enable() {
    let g = Governed::new("gov-off", None);
    let user = g.create_user("gov-off");
    let ours = strong_password("ours");
    g.apply(
        "ann",
        &user,
        Some(&ours),
        json!({"governance": {"mfa": {"requiredWithin": "7d", "action": "DisableConsole"}}}),
    );
    wait_ready_reason(g.ns(), "ann", "True", "Created", CONVERGE);
    g.advance_days(8);
    wait_ready_reason(g.ns(), "ann", "False", "ConsoleDisabled", CONVERGE);
    assert!(!g.has_login_profile(&user));

    let admin = strong_password("admin");
    g.aws(&[
        "iam",
        "create-login-profile",
        "--user-name",
        &user,
        "--password",
        &admin,
    ]);
    g.reenable("ann", "ticket-7");
    let lp = wait_ready_reason(g.ns(), "ann", "False", "LoginProfileExists", CONVERGE);
    assert!(lp["status"]["passwordFingerprint"].is_null(), "{lp}");
    holds_for(Duration::from_secs(3), || {
        assert_eq!(calls(&user, "UpdateLoginProfile"), 0);
        assert_eq!(calls(&user, "DeleteLoginProfile"), 1, "the disable only");
    });
    change_password_as_user_in(Some(&g.id), &user, &admin, &strong_password("a2"))
        .expect("IAM still holds the admin's password");
}

#[test]
fn a_password_unused_for_46_days_is_disabled_and_a_10_day_old_unused_one_is_not() {
    let g = Governed::new("gov-unused", None);
    let rule = json!({"governance": {"unused": {"after": "45d", "action": "DisableConsole"}}});
    let (old, fresh) = (g.create_user("gov-old"), g.create_user("gov-fresh"));
    g.apply("old", &old, Some(&strong_password("old")), rule.clone());
    wait_ready_reason(g.ns(), "old", "True", "Created", CONVERGE);
    env().record_sign_in(&g.id, &old);
    g.advance_days(36);
    g.apply("fresh", &fresh, Some(&strong_password("fresh")), rule);
    wait_ready_reason(g.ns(), "fresh", "True", "Created", CONVERGE);
    g.advance_days(10);

    let lp = wait_ready_reason(g.ns(), "old", "False", "ConsoleDisabled", CONVERGE);
    let (status, reason, message) = condition(&lp, "PasswordUsed").unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "PasswordUnused")
    );
    assert!(message.contains("46d ago"), "{message}");
    assert_eq!(lp["status"]["console"]["disabled"]["rule"], "unused");
    assert!(lp["status"]["console"]["passwordLastUsed"].is_string());
    assert!(!g.has_login_profile(&old));

    // The same (day-46) report, judged for the profile made on day 36.
    let day_46 = report_time(&lp);
    let lp = wait_for("fresh to be judged by the day-46 report", CONVERGE, || {
        let lp = get_lp(g.ns(), "fresh");
        (lp["status"]["console"]["reportGeneratedAt"] == day_46.as_str()).then_some(lp)
    });
    let (status, reason, _) = condition(&lp, "PasswordUsed").unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("True", "PasswordUsed"),
        "{lp}"
    );
    assert!(condition_true(&lp, "Ready"), "{lp}");
    assert!(lp["status"]["console"].get("passwordLastUsed").is_none());
    assert!(g.has_login_profile(&fresh));

    // A new password in the source is a human act too: created once more.
    g.apply(
        "old",
        &old,
        Some(&strong_password("old-new")),
        json!({"governance": {"unused": {"after": "45d", "action": "DisableConsole"}}}),
    );
    wait_ready_reason(g.ns(), "old", "True", "Created", CONVERGE);
    assert!(g.has_login_profile(&old));
    assert_eq!(calls(&old, "CreateLoginProfile"), 2);
}

#[test]
fn a_generated_password_is_replaced_before_it_expires_and_a_secret_one_only_warns() {
    let g = Governed::new("gov-expiry", None);
    g.passwords_expire_after_90_days();
    let (generated, sourced) = (g.create_user("gov-gen"), g.create_user("gov-src"));
    g.apply(
        "gen",
        &generated,
        None,
        json!({"generatePassword": {"length": 24}}),
    );
    g.apply(
        "src",
        &sourced,
        Some(&strong_password("src")),
        json!({"governance": {}}),
    );
    wait_ready_reason(g.ns(), "gen", "True", "Created", CONVERGE);
    wait_ready_reason(g.ns(), "src", "True", "Created", CONVERGE);
    g.allow_a_new_report();
    let lp = wait_for("src's expiry in status", CONVERGE, || {
        let lp = get_lp(g.ns(), "src");
        lp["status"]["console"]["passwordExpiresAt"]
            .is_string()
            .then_some(lp)
    });
    let console = &lp["status"]["console"];
    let (changed, expires) = (
        console["passwordLastChanged"].as_str().unwrap(),
        console["passwordExpiresAt"].as_str().unwrap(),
    );
    assert_eq!(
        seconds(expires) - seconds(changed),
        90 * DAY as i64,
        "{console}"
    );
    let secret_value = |name: &str| {
        env().kubectl_ok(&[
            "get",
            "secret",
            name,
            "-n",
            g.ns(),
            "-o",
            "jsonpath={.data.password}",
        ])
    };
    let first = secret_value("gen");

    // 84 days on: within rotateBefore (7d) of expiry.
    g.advance_days(84);
    wait_until("the generated password to be replaced", CONVERGE, || {
        secret_value("gen") != first
    });
    wait_for(
        "one UpdateLoginProfile with the new password",
        CONVERGE,
        || (calls(&generated, "UpdateLoginProfile") == 1).then_some(()),
    );
    wait_ready_reason(g.ns(), "gen", "True", "Updated", CONVERGE);
    holds_for(Duration::from_secs(4), || {
        assert_eq!(
            calls(&generated, "UpdateLoginProfile"),
            1,
            "replaced once for one expiry"
        );
    });
    assert!(
        events(g.ns(), "gen")
            .iter()
            .any(|e| e["reason"] == "PasswordRotated")
    );
    use base64::Engine;
    let new = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(secret_value("gen").trim())
            .unwrap(),
    )
    .unwrap();
    change_password_as_user_in(Some(&g.id), &generated, &new, &strong_password("mine"))
        .expect("IAM holds the replacement password");

    // The Secret-sourced one: warned, never rotated.
    let lp = wait_condition(
        g.ns(),
        "src",
        "PasswordExpiring",
        "True",
        "PasswordExpiring",
    );
    assert!(condition_true(&lp, "Ready"));
    holds_for(Duration::from_secs(3), || {
        assert_eq!(calls(&sourced, "UpdateLoginProfile"), 0);
    });
}

#[test]
fn a_delivered_password_is_issued_anew_before_it_expires() {
    let g = Governed::new("gov-deliver", None);
    g.passwords_expire_after_90_days();
    let user = g.create_user("gov-dlv");
    let dir = scratch_dir("gov-deliver");
    let (identity, public) = age_key(&dir, "key.txt");
    env().apply_ok(&login_profile(
        g.ns(),
        "dlv",
        json!({"userName": user, "accountRef": {"name": g.iam_account},
               "generatePassword": {"deliverTo": {"ageRecipients": [public]}}}),
    ));
    let opened = |lp: &Value| {
        age_decrypt(
            lp["status"]["encryptedPassword"]["age"].as_str().unwrap(),
            &identity,
        )
        .unwrap()
    };
    wait_ready_reason(g.ns(), "dlv", "True", "Created", CONVERGE);
    g.allow_a_new_report();
    let first = wait_for("the first delivered password", CONVERGE, || {
        let lp = get_lp(g.ns(), "dlv");
        lp["status"]["console"]["passwordExpiresAt"]
            .is_string()
            .then_some(lp)
    });
    let first_password = opened(&first);
    let created = status_str(&first, "createDate").to_string();

    // 84 days on: within rotateBefore (7d) of expiry.
    g.advance_days(84);
    let second = wait_for("a new ciphertext", CONVERGE, || {
        let lp = get_lp(g.ns(), "dlv");
        (lp["status"]["encryptedPassword"]["generatedAt"]
            != first["status"]["encryptedPassword"]["generatedAt"])
            .then_some(lp)
    });
    wait_ready_reason(g.ns(), "dlv", "True", "Updated", CONVERGE);
    holds_for(Duration::from_secs(4), || {
        assert_eq!(
            calls(&user, "UpdateLoginProfile"),
            1,
            "issued once for one expiry"
        );
    });
    assert_eq!(status_str(&second, "createDate"), created);
    let second_password = opened(&second);
    assert_ne!(second_password, first_password);
    change_password_as_user_in(
        Some(&g.id),
        &user,
        &second_password,
        &strong_password("mine"),
    )
    .expect("IAM holds the re-issued password");
}

#[test]
fn one_credential_report_serves_every_login_profile_of_an_account_and_none_is_made_where_nothing_asks()
 {
    // An IAMAccount floor of `{}`: report only, for every LoginProfile there.
    let asking = Governed::with_report_interval("gov-budget", Some(json!({})), "1h");
    let quiet = Governed::new("gov-quiet", None);
    let n = 50;
    let users: Vec<String> = (0..n).map(|i| format!("{}-{i}", unique("gov-b"))).collect();
    create_users_in(&asking.id, &users);
    apply_many_with(
        asking.ns(),
        &users,
        "budget",
        json!({"accountRef": {"name": asking.iam_account}}),
    );
    let user = quiet.create_user("gov-q");
    quiet.apply("q", &user, Some(&strong_password("q")), json!({}));
    wait_all_ready(asking.ns(), n, Duration::from_secs(180));
    wait_until(
        "every LoginProfile to show its console facts",
        CONVERGE,
        || {
            list_lps(asking.ns())
                .iter()
                .all(|lp| lp["status"]["console"]["reportGeneratedAt"].is_string())
        },
    );
    let reports: std::collections::BTreeSet<String> =
        list_lps(asking.ns()).iter().map(report_time).collect();
    assert_eq!(reports.len(), 1, "one report for all: {reports:?}");
    // One fetch in the interval: GenerateCredentialReport answers STARTED,
    // then COMPLETE; then one GetCredentialReport.
    let key = format!("account:{}", asking.id);
    let (generated, fetched) = (
        calls(&key, "GenerateCredentialReport"),
        calls(&key, "GetCredentialReport"),
    );
    assert_eq!(fetched, 1, "one report read for {n} LoginProfiles");
    assert!(generated <= 2, "{generated} GenerateCredentialReport");
    wait_ready_reason(quiet.ns(), "q", "True", "Created", CONVERGE);
    holds_for(Duration::from_secs(3), || {
        let key = format!("account:{}", quiet.id);
        assert_eq!(
            calls(&key, "GenerateCredentialReport") + calls(&key, "GetCredentialReport"),
            0,
            "no report where nothing asks"
        );
    });
}
