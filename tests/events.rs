//! IAM's events (docs/events.md): an IAMAccount names the SQS queue an
//! EventBridge rule feeds with IAM's CloudTrail events, and the operator,
//! polling only once an hour here, acts on drift made outside it within
//! seconds of the event. What is not an event about one of its users
//! changes nothing and is counted. While its own writes come back as
//! events, drift checks wait for the long period; when they stop coming
//! back, or the queue cannot be read, the IAMAccount says so and polling
//! resumes. The operator reads the queue as the test environment's operator
//! identity, which holds only the shipped policy files
//! (docs/iam-policy-events.json among them), or as an account's
//! administrator role where a test needs an account of its own (its
//! delivery knobs are per account).

mod support;

use std::time::Duration;

use serde_json::json;
use support::*;

/// The emulator's default AWS account: the operator's own credentials act
/// there (an IAMAccount without `roleArn`).
const DEFAULT_ACCOUNT_ID: &str = "123456789012";

/// A namespace, an IAMAccount of its own that names `queue`, and an
/// operator polling IAM once an hour: any look at IAM within a test comes
/// from an event.
struct Setup {
    ns: TestNamespace,
    account: String,
    operator: Operator,
    _accounts: TestAccounts,
}

impl Setup {
    fn new(prefix: &str, queue: &EventQueue) -> Self {
        Self::with(prefix, &queue.url, None, &["--resync-period", "1h"])
    }

    /// The same with the queue at `queue_url`, an IAMAccount acting in
    /// `role_account` (its administrator role) if given, and these flags.
    fn with(prefix: &str, queue_url: &str, role_account: Option<&str>, flags: &[&str]) -> Self {
        let ns = TestNamespace::with_account(prefix, None);
        let account = unique(prefix).to_lowercase();
        let mut spec = json!({
            "namespaces": [ns.name],
            "userNames": ["*"],
            "events": {"sqsQueueUrl": queue_url},
        });
        if let Some(role_account) = role_account {
            spec["roleArn"] = json!(format!(
                "arn:aws:iam::{role_account}:role/OrganizationAccountAccessRole"
            ));
        }
        env().apply_ok(&iam_account(&account, spec));
        let accounts = TestAccounts(vec![account.clone()]);
        let operator = Operator::start(&ns.name, flags);
        wait_account_ready(&account, "True", "Verified");
        Self {
            ns,
            account,
            operator,
            _accounts: accounts,
        }
    }

    /// The same in an AWS account of its own (its delivery knobs are the
    /// test's), reading a queue there, as that account's administrator.
    fn in_own_account(prefix: &str, flags: &[&str]) -> (Self, EventQueue) {
        let queue = EventQueue::create(&unique_account_id());
        let setup = Self::with(prefix, &queue.url, Some(&queue.account), flags);
        (setup, queue)
    }

    /// A LoginProfile `name` for `user`, Created; returns its password.
    fn login_profile(&self, name: &str, user: &str) -> String {
        self.login_profile_under(name, user, "OnSecretChange")
    }

    /// The same under `passwordUpdatePolicy: policy`.
    fn login_profile_under(&self, name: &str, user: &str, policy: &str) -> String {
        let password = strong_password(name);
        env().apply_ok(&secret(&self.ns.name, name, &[("password", &password)]));
        env().apply_ok(&login_profile(
            &self.ns.name,
            name,
            json!({"userName": user, "passwordSecretRef": {"name": name},
                   "accountRef": {"name": self.account}, "passwordUpdatePolicy": policy}),
        ));
        wait_ready_reason(&self.ns.name, name, "True", "Created", CONVERGE);
        password
    }

    /// Waits for the IAMAccount's EventsFlowing condition to say `status`
    /// and `reason`; returns its message.
    fn wait_events(&self, status: &str, reason: &str, within: Duration) -> String {
        wait_for(
            &format!(
                "IAMAccount {} EventsFlowing={status} {reason}",
                self.account
            ),
            within,
            || {
                let (s, r, message) = condition(&get_account(&self.account), "EventsFlowing")?;
                (s == status && r == reason).then_some(message)
            },
        )
    }

    fn events(&self, event: &str, outcome: &str) -> f64 {
        self.operator.metric_sum(&format!(
            "loginprofile_iam_events_total{{event=\"{event}\",outcome=\"{outcome}\"}}"
        ))
    }
}

#[test]
fn a_login_profile_deleted_outside_the_operator_is_back_within_seconds() {
    let queue = EventQueue::create(DEFAULT_ACCOUNT_ID);
    let setup = Setup::new("ev-deleted", &queue);
    let mut users = TestUsers::default();
    let user = users.create("ev-deleted");
    setup.login_profile("bob", &user);

    env().aws_ok(&["iam", "delete-login-profile", "--user-name", &user]);
    // With a one-hour drift check, only the event brings it back this soon.
    wait_until(
        "the login profile to be made again",
        Duration::from_secs(15),
        || iam_profile(&user).is_ok(),
    );
    assert!(setup.events("DeleteLoginProfile", "handled") >= 1.0);
    assert_eq!(calls(&user, "CreateLoginProfile"), 2);
    let lp = wait_ready_reason(&setup.ns.name, "bob", "True", "Created", CONVERGE);
    assert!(
        ready(&lp)
            .unwrap()
            .2
            .contains("deleted outside the operator"),
        "{lp}"
    );
}

#[test]
fn events_that_are_not_about_its_users_change_nothing_and_are_counted() {
    let queue = EventQueue::create(DEFAULT_ACCOUNT_ID);
    let mut setup = Setup::new("ev-unusable", &queue);
    let mut users = TestUsers::default();
    let user = users.create("ev-unusable");
    setup.login_profile("bob", &user);
    let writes = iam_writes(&user);
    let reads = calls(&user, "GetLoginProfile");

    let event =
        |id: &str, account: &str| forged_event(id, "UpdateLoginProfile", account, &user, json!({}));
    queue.send("not an event");
    queue.send(
        &json!({"source": "aws.s3", "detail": {"eventSource": "s3.amazonaws.com"}}).to_string(),
    );
    queue.send(&event("foreign-1", "210987654321"));
    queue.send(&event("twice-1", DEFAULT_ACCOUNT_ID));
    queue.send(&event("twice-1", DEFAULT_ACCOUNT_ID));
    wait_until("every message counted", CONVERGE, || {
        setup.events("unknown", "malformed") >= 1.0
            && setup.events("unknown", "ignored") >= 1.0
            && setup.events("UpdateLoginProfile", "foreign") >= 1.0
            && setup.events("UpdateLoginProfile", "duplicate") >= 1.0
    });
    // The one event of its account woke the LoginProfile once: one look, no write.
    wait_until("the woken LoginProfile's look", CONVERGE, || {
        calls(&user, "GetLoginProfile") > reads
    });
    assert_eq!(setup.events("UpdateLoginProfile", "handled"), 1.0);
    assert_eq!(iam_writes(&user), writes, "no IAM write");
    assert!(
        setup.operator.exited().is_none(),
        "the receiver is still up"
    );
    wait_ready_reason(&setup.ns.name, "bob", "True", "Created", CONVERGE);
}

/// Drift checks every 2 s without events; one hour while the operator's
/// own writes come back. At rest, then, IAM is not read at all.
#[test]
fn while_its_own_writes_come_back_drift_checks_wait_for_the_long_period() {
    let (setup, queue) = Setup::in_own_account(
        "ev-rest",
        &["--resync-period", "2s", "--drift-period-with-events", "1h"],
    );
    let account = queue.account.clone();
    let user = unique("ev-rest");
    create_users_in(&account, std::slice::from_ref(&user));
    setup.login_profile("bob", &user);
    let message = setup.wait_events("True", "EventsFlowing", CONVERGE);
    assert!(message.contains("every 1h"), "{message}");
    // Its create, or the heartbeat when the receiver started after the
    // create, came back as the operator's own.
    assert!(setup.events("CreateLoginProfile", "own") + setup.events("TagUser", "own") >= 1.0);
    assert!(
        setup
            .operator
            .metrics()
            .contains("loginprofile_iam_event_queues{state=\"flowing\"} 1"),
        "{}",
        setup.operator.metrics()
    );
    // The window itself is what is measured: ten resync periods at rest,
    // where polling alone would read IAM ten times. One drift check placed
    // before the flow was confirmed may still come; none after it.
    let before = calls(&user, "GetLoginProfile");
    std::thread::sleep(Duration::from_secs(20));
    let reads = calls(&user, "GetLoginProfile") - before;
    assert!(
        reads <= 1,
        "{reads} drift checks within ten resync periods while events flow"
    );
}

/// Events that stop coming back are seen within the deadline: the
/// IAMAccount says which write was not seen, polling resumes at the resync
/// period, and once events come back (the operator's heartbeat shows it)
/// the IAMAccount says they flow again.
#[test]
fn events_that_stop_are_seen_polling_resumes_and_a_heartbeat_shows_them_back() {
    let (setup, queue) = Setup::in_own_account(
        "ev-stop",
        &[
            "--resync-period",
            "3s",
            "--drift-period-with-events",
            "1h",
            "--event-deadline",
            "10s",
        ],
    );
    let account = queue.account.clone();
    let user = unique("ev-stop");
    create_users_in(&account, std::slice::from_ref(&user));
    setup.login_profile("bob", &user);
    setup.wait_events("True", "EventsFlowing", CONVERGE);

    queue.delivery(0.0, 1.0);
    env().apply_ok(&secret(
        &setup.ns.name,
        "bob",
        &[("password", &strong_password("ev-stop-2"))],
    ));
    wait_until("the new password sent", CONVERGE, || {
        calls(&user, "UpdateLoginProfile") >= 1
    });
    // The write not seen: the new password, or the heartbeat that followed
    // it (both on the user of the one Ready LoginProfile).
    let message = setup.wait_events("False", "EventsLate", CONVERGE);
    assert!(
        message.contains(&user) && message.contains("did not arrive within the event deadline"),
        "{message}"
    );
    wait_until("the gauge to count it late", CONVERGE, || {
        setup
            .operator
            .metrics()
            .contains("loginprofile_iam_event_queues{state=\"late\"} 1")
    });
    let reads = calls(&user, "GetLoginProfile");
    wait_until(
        "drift checks at the resync period again",
        Duration::from_secs(30),
        || calls(&user, "GetLoginProfile") >= reads + 2,
    );

    queue.delivery(0.0, 0.0);
    setup.wait_events("True", "EventsFlowing", CONVERGE);
    let tags = env()
        .aws_in(&account, &["iam", "list-user-tags", "--user-name", &user])
        .unwrap();
    assert!(
        tags["Tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|tag| tag["Key"] == "iam.loginprofile.dev/heartbeat"),
        "the heartbeat is a tag on the user: {tags}"
    );
}

/// A queue the operator cannot read is the IAMAccount's condition, with
/// what to check; the LoginProfiles are polled as without events.
#[test]
fn a_queue_it_cannot_read_is_the_iam_accounts_condition() {
    let queue = EventQueue::create(DEFAULT_ACCOUNT_ID);
    let missing = format!("{}-missing", queue.url);
    let setup = Setup::with("ev-missing", &missing, None, &["--resync-period", "1h"]);
    let mut users = TestUsers::default();
    let user = users.create("ev-missing");
    setup.login_profile("bob", &user);
    let message = setup.wait_events("False", "EventQueueUnreadable", CONVERGE);
    assert!(
        message.contains("spec.events.sqsQueueUrl") && message.contains(&missing),
        "{message}"
    );
}

/// Under `Enforce`, the person's own ChangePassword and an administrator's
/// UpdateLoginProfile are undone within seconds: their events are the
/// evidence. The account's credential report was made before the changes
/// (IAM makes one at most every 4 hours), so it cannot be what shows them.
#[test]
fn under_enforce_a_password_changed_outside_is_set_again_within_seconds() {
    let (setup, queue) = Setup::in_own_account("ev-enforce", &["--resync-period", "1h"]);
    let account = queue.account.clone();
    let user = unique("ev-enforce");
    let other = unique("ev-enforce-admin");
    create_users_in(&account, &[user.clone(), other.clone()]);
    let password = setup.login_profile_under("bob", &user, "Enforce");
    let others_password = setup.login_profile_under("carol", &other, "Enforce");
    env()
        .aws_in(&account, &["iam", "generate-credential-report"])
        .unwrap();

    change_password_as_user_in(
        Some(&account),
        &user,
        &password,
        &strong_password("ev-enforce-mine"),
    )
    .unwrap();
    // With a one-hour drift check and a report from before the change,
    // only the event brings the Secret's password back this soon.
    wait_until(
        "the Secret's password sent again",
        Duration::from_secs(15),
        || calls(&user, "UpdateLoginProfile") >= 1,
    );
    let lp = wait_ready_reason(&setup.ns.name, "bob", "True", "Updated", CONVERGE);
    assert!(
        ready(&lp)
            .unwrap()
            .2
            .contains("changed outside the operator (passwordUpdatePolicy: Enforce)"),
        "{lp}"
    );
    assert!(setup.events("ChangePassword", "handled") >= 1.0);
    // The Secret's password is IAM's again: the person can change from it.
    change_password_as_user_in(
        Some(&account),
        &user,
        &password,
        &strong_password("ev-enforce-again"),
    )
    .expect("the Secret's password is the current one");

    // An administrator sets another password (the account refuses no
    // reused password, so sending the Secret's again cannot be refused).
    let admins = strong_password("ev-enforce-admin");
    env()
        .aws_in(
            &account,
            &[
                "iam",
                "update-login-profile",
                "--user-name",
                &other,
                "--password",
                &admins,
            ],
        )
        .unwrap();
    wait_until(
        "the Secret's password sent again after the administrator's",
        Duration::from_secs(15),
        || calls(&other, "UpdateLoginProfile") >= 2,
    );
    assert!(setup.events("UpdateLoginProfile", "handled") >= 1.0);
    let lp = wait_ready_reason(&setup.ns.name, "carol", "True", "Updated", CONVERGE);
    assert!(
        ready(&lp)
            .unwrap()
            .2
            .contains("changed outside the operator (passwordUpdatePolicy: Enforce)"),
        "{lp}"
    );
    change_password_as_user_in(
        Some(&account),
        &other,
        &others_password,
        &strong_password("ev-enforce-carol"),
    )
    .expect("the Secret's password is the current one");
}

/// Under `OnSecretChange`, the person's own ChangePassword is theirs to
/// keep: its event's time is recorded in status, and nothing is sent.
#[test]
fn under_on_secret_change_a_persons_own_change_password_is_recorded_and_kept() {
    let queue = EventQueue::create(DEFAULT_ACCOUNT_ID);
    let setup = Setup::new("ev-own", &queue);
    let mut users = TestUsers::default();
    let user = users.create("ev-own");
    let password = setup.login_profile("bob", &user);
    let chosen = strong_password("ev-own-mine");

    change_password_as_user(&user, &password, &chosen).unwrap();
    // With a one-hour drift check, only the event records it this soon.
    let recorded = wait_for(
        "status.passwordChangedOutOfBand",
        Duration::from_secs(15),
        || {
            let lp = get_lp(&setup.ns.name, "bob");
            lp["status"]["passwordChangedOutOfBand"]
                .as_str()
                .map(str::to_string)
        },
    );
    assert!(
        chrono::DateTime::parse_from_rfc3339(&recorded).is_ok(),
        "{recorded}"
    );
    assert!(setup.events("ChangePassword", "handled") >= 1.0);
    assert_eq!(calls(&user, "UpdateLoginProfile"), 0, "nothing sent");
    let lp = wait_ready_reason(&setup.ns.name, "bob", "True", "Created", CONVERGE);
    assert_eq!(lp["status"]["passwordChangedOutOfBand"], recorded.as_str());

    // SQS delivers out of order: of two later changes, the older one
    // arriving last moves nothing back.
    let at = |seconds: i64| {
        (chrono::DateTime::parse_from_rfc3339(&recorded).unwrap()
            + chrono::Duration::seconds(seconds))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let (newer, older) = (at(2), at(1));
    wait_until("the clock past both", CONVERGE, || {
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true) > newer
    });
    let change_at = |time: &str| {
        queue.send(&forged_event(
            &unique("change"),
            "ChangePassword",
            DEFAULT_ACCOUNT_ID,
            &user,
            json!({"eventTime": time}),
        ));
    };
    change_at(&newer);
    wait_until("the newer change recorded", CONVERGE, || {
        get_lp(&setup.ns.name, "bob")["status"]["passwordChangedOutOfBand"] == newer.as_str()
    });
    change_at(&older);
    wait_until("the older change handled", CONVERGE, || {
        setup.events("ChangePassword", "handled") >= 3.0
    });
    holds_for(Duration::from_secs(3), || {
        let lp = get_lp(&setup.ns.name, "bob");
        assert_eq!(lp["status"]["passwordChangedOutOfBand"], newer.as_str());
    });
    assert_eq!(calls(&user, "UpdateLoginProfile"), 0, "nothing sent");
    change_password_as_user(&user, &chosen, &strong_password("ev-own-again"))
        .expect("the person's password is still the current one");
}

/// A call IAM refused changed nothing: CloudTrail records it with its
/// `errorCode`, and the operator counts it and does nothing more. Under
/// `Enforce` nothing is sent again (in an account refusing reused
/// passwords, sending the password IAM still has would be refused as
/// reused); under `OnSecretChange` nothing is recorded.
#[test]
fn calls_iam_refused_change_nothing() {
    let (setup, queue) = Setup::in_own_account("ev-refused", &["--resync-period", "1h"]);
    let account = queue.account.clone();
    let enforced = unique("ev-refused-e");
    let kept = unique("ev-refused-k");
    create_users_in(&account, &[enforced.clone(), kept.clone()]);
    let password = setup.login_profile_under("bob", &enforced, "Enforce");
    setup.login_profile("carol", &kept);

    // Two people mistype their old password; an administrator tries a
    // password the account's policy refuses.
    for user in [&enforced, &kept] {
        change_password_as_user_in(
            Some(&account),
            user,
            "Not-the-password-1!",
            &strong_password("ev-refused-new"),
        )
        .expect_err("IAM refuses a wrong old password");
    }
    env()
        .aws_in(
            &account,
            &[
                "iam",
                "update-login-profile",
                "--user-name",
                &enforced,
                "--password",
                "short",
            ],
        )
        .expect_err("IAM refuses a password its policy refuses");
    wait_until("the refused calls counted", CONVERGE, || {
        setup.events("ChangePassword", "refused") >= 2.0
            && setup.events("UpdateLoginProfile", "refused") >= 1.0
    });
    holds_for(Duration::from_secs(3), || {
        assert_eq!(accepted(&enforced, "UpdateLoginProfile"), 0, "nothing sent");
        let lp = get_lp(&setup.ns.name, "carol");
        assert!(lp["status"]["passwordChangedOutOfBand"].is_null(), "{lp}");
    });
    assert_eq!(setup.events("ChangePassword", "handled"), 0.0);
    assert_eq!(setup.events("UpdateLoginProfile", "handled"), 0.0);
    wait_ready_reason(&setup.ns.name, "bob", "True", "Created", CONVERGE);
    change_password_as_user_in(
        Some(&account),
        &enforced,
        &password,
        &strong_password("ev-refused-mine"),
    )
    .expect("the Secret's password is still the current one");
}

/// The operator's own write is its own however its answer fares: an
/// UpdateLoginProfile that IAM applied but whose answer never came (held
/// past `--iam-timeout`) comes back as an event while the operator still
/// waits, and is not taken, under `Enforce`, for someone else's change;
/// nor is the resend that follows the lost answer.
#[test]
fn a_write_whose_answer_was_lost_is_still_the_operators_own() {
    let (setup, queue) =
        Setup::in_own_account("ev-lost", &["--resync-period", "1h", "--iam-timeout", "3s"]);
    let account = queue.account.clone();
    let user = unique("ev-lost");
    create_users_in(&account, std::slice::from_ref(&user));
    setup.login_profile_under("bob", &user, "Enforce");
    // The receiver runs (it starts once a LoginProfile names the IAMAccount).
    setup.wait_events("True", "EventsFlowing", CONVERGE);

    let rotated = strong_password("ev-lost-rotated");
    env().fault(json!({"action": "UpdateLoginProfile", "user": user, "mode": "hold"}));
    env().apply_ok(&secret(&setup.ns.name, "bob", &[("password", &rotated)]));
    env().wait_held("UpdateLoginProfile", &user);
    wait_ready_reason(&setup.ns.name, "bob", "True", "Updated", CONVERGE);
    env().release_held(&user);
    wait_until(
        "both writes' events counted as the operator's own",
        CONVERGE,
        || setup.events("UpdateLoginProfile", "own") >= 2.0,
    );
    assert_eq!(
        setup.events("UpdateLoginProfile", "handled"),
        0.0,
        "an event of its own taken for someone else's"
    );
    holds_for(Duration::from_secs(3), || {
        assert_eq!(
            accepted(&user, "UpdateLoginProfile"),
            2,
            "the rotation whose answer was lost, then the same password once more; nothing else"
        );
    });
    change_password_as_user_in(
        Some(&account),
        &user,
        &rotated,
        &strong_password("ev-lost-mine"),
    )
    .expect("the Secret's password is the current one");
}
