//! IAM's events (docs/events.md): an IAMAccount names the SQS queue an
//! EventBridge rule feeds with IAM's CloudTrail events, and the operator,
//! polling only once an hour here, acts on drift made outside it within
//! seconds of the event. What is not an event about one of its users
//! changes nothing and is counted. The operator reads the queue as the test
//! environment's operator identity, which holds only the shipped policy
//! files (docs/iam-policy-events.json among them).

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
        let ns = TestNamespace::with_account(prefix, None);
        let account = unique(prefix).to_lowercase();
        env().apply_ok(&iam_account(
            &account,
            json!({
                "namespaces": [ns.name],
                "userNames": ["*"],
                "events": {"sqsQueueUrl": queue.url},
            }),
        ));
        let accounts = TestAccounts(vec![account.clone()]);
        let operator = Operator::start(&ns.name, &["--resync-period", "1h"]);
        wait_account_ready(&account, "True", "Verified");
        Self {
            ns,
            account,
            operator,
            _accounts: accounts,
        }
    }

    /// A LoginProfile `name` for `user`, Created, and the event of its
    /// create handled (one look at IAM).
    fn login_profile(&self, name: &str, user: &str) {
        let password = strong_password(name);
        env().apply_ok(&secret(&self.ns.name, name, &[("password", &password)]));
        env().apply_ok(&login_profile(
            &self.ns.name,
            name,
            json!({"userName": user, "passwordSecretRef": {"name": name},
                   "accountRef": {"name": self.account}}),
        ));
        wait_ready_reason(&self.ns.name, name, "True", "Created", CONVERGE);
        wait_until("the event of its create to be looked at", CONVERGE, || {
            calls(user, "GetLoginProfile") >= 1
        });
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
