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

    /// A LoginProfile `name` for `user`, Created; returns its password.
    fn login_profile(&self, name: &str, user: &str) -> String {
        let password = strong_password(name);
        env().apply_ok(&secret(&self.ns.name, name, &[("password", &password)]));
        env().apply_ok(&login_profile(
            &self.ns.name,
            name,
            json!({"userName": user, "passwordSecretRef": {"name": name},
                   "accountRef": {"name": self.account}}),
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

    let event = |id: &str, account: &str| {
        json!({
            "version": "0", "id": id, "source": "aws.iam", "account": account,
            "detail-type": "AWS API Call via CloudTrail", "region": "us-east-1",
            "detail": {"eventSource": "iam.amazonaws.com", "eventName": "UpdateLoginProfile",
                       "eventID": id, "recipientAccountId": account,
                       "requestParameters": {"userName": user}},
        })
        .to_string()
    };
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
    let account = unique_account_id();
    let queue = EventQueue::create(&account);
    let setup = Setup::with(
        "ev-rest",
        &queue.url,
        Some(&account),
        &["--resync-period", "2s", "--drift-period-with-events", "1h"],
    );
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
    let account = unique_account_id();
    let queue = EventQueue::create(&account);
    let setup = Setup::with(
        "ev-stop",
        &queue.url,
        Some(&account),
        &[
            "--resync-period",
            "3s",
            "--drift-period-with-events",
            "1h",
            "--event-deadline",
            "10s",
        ],
    );
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
    let account = unique_account_id();
    let queue = EventQueue::create(&account);
    let setup = Setup::with(
        "ev-enforce",
        &queue.url,
        Some(&account),
        &["--resync-period", "1h"],
    );
    let user = unique("ev-enforce");
    let other = unique("ev-enforce-admin");
    create_users_in(&account, &[user.clone(), other.clone()]);
    let enforced = |name: &str, user: &str| {
        let password = strong_password(name);
        env().apply_ok(&secret(&setup.ns.name, name, &[("password", &password)]));
        env().apply_ok(&login_profile(
            &setup.ns.name,
            name,
            json!({"userName": user, "passwordSecretRef": {"name": name},
                   "accountRef": {"name": setup.account}, "passwordUpdatePolicy": "Enforce"}),
        ));
        password
    };
    let password = enforced("bob", &user);
    let others_password = enforced("carol", &other);
    wait_ready_reason(&setup.ns.name, "bob", "True", "Created", CONVERGE);
    wait_ready_reason(&setup.ns.name, "carol", "True", "Created", CONVERGE);
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
    change_password_as_user(&user, &chosen, &strong_password("ev-own-again"))
        .expect("the person's password is still the current one");
}
