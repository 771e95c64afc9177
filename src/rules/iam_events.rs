//! IAM's CloudTrail events as an EventBridge rule delivers them to SQS:
//! which IAM user in which AWS account an event is about, or why it is of
//! no use. Pure: the receiver (controller/runtime/iam_events.rs) reads the
//! queue and wakes the LoginProfiles.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// The IAM calls an event is acted on for: the login profile's own calls,
/// a person's ChangePassword, the user's deletion, and the tag calls that
/// change the ownership record or the required user tag.
pub const EVENT_NAMES: [&str; 7] = [
    "CreateLoginProfile",
    "UpdateLoginProfile",
    "DeleteLoginProfile",
    "ChangePassword",
    "DeleteUser",
    "TagUser",
    "UntagUser",
];

/// The tag the operator writes on an IAM user it manages when nothing else
/// was written for a while, so that its event shows IAM's events still flow.
pub const HEARTBEAT_TAG: &str = "iam.loginprofile.dev/heartbeat";

/// One event about an IAM user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamEvent {
    /// CloudTrail's eventID: the same event delivered twice has the same one.
    pub id: String,
    /// One of [`EVENT_NAMES`].
    pub name: &'static str,
    /// The AWS account whose user it is (`recipientAccountId`).
    pub account_id: String,
    /// The IAM user the call acted on (ChangePassword: its caller).
    pub user: String,
    /// The caller's ARN (`userIdentity.arn`), empty if CloudTrail gave none.
    pub caller: String,
    /// IAM's id of the request (`requestID`): the one its answer carried.
    pub request_id: Option<String>,
    /// When IAM answered the call (`eventTime`), if the event says.
    pub time: Option<DateTime<Utc>>,
    /// Why IAM refused the call (`errorCode`), if it did: CloudTrail
    /// records refused calls too (a wrong old password, a password the
    /// policy refuses, an action not allowed), and they changed nothing.
    pub refused: Option<String>,
}

/// Why a message says nothing about an IAM user's login profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// Not JSON, or not shaped like an EventBridge event from CloudTrail.
    Malformed,
    /// Another service's event, or an IAM call the operator does not act on.
    Ignored,
}

impl Unusable {
    pub fn label(self) -> &'static str {
        match self {
            Unusable::Malformed => "malformed",
            Unusable::Ignored => "ignored",
        }
    }
}

/// Reads one SQS message body.
pub fn parse(body: &str) -> Result<IamEvent, Unusable> {
    let event: Value = serde_json::from_str(body).map_err(|_| Unusable::Malformed)?;
    let detail = event.get("detail").filter(|d| d.is_object());
    let Some(detail) = detail else {
        return Err(Unusable::Malformed);
    };
    let text = |value: &Value, pointer: &str| {
        value
            .pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    if text(&event, "/source").as_deref() != Some("aws.iam")
        || text(detail, "/eventSource").as_deref() != Some("iam.amazonaws.com")
    {
        return Err(Unusable::Ignored);
    }
    let name = text(detail, "/eventName").ok_or(Unusable::Malformed)?;
    let Some(name) = EVENT_NAMES.iter().copied().find(|known| *known == name) else {
        return Err(Unusable::Ignored);
    };
    let user = if name == "ChangePassword" {
        text(detail, "/userIdentity/userName")
    } else {
        text(detail, "/requestParameters/userName")
    };
    let id = text(detail, "/eventID");
    let account_id = text(detail, "/recipientAccountId").or_else(|| text(&event, "/account"));
    match (id, account_id, user) {
        (Some(id), Some(account_id), Some(user)) if !user.is_empty() => Ok(IamEvent {
            id,
            name,
            account_id,
            user,
            caller: text(detail, "/userIdentity/arn").unwrap_or_default(),
            request_id: text(detail, "/requestID").filter(|id| !id.is_empty()),
            time: text(detail, "/eventTime")
                .and_then(|time| DateTime::parse_from_rfc3339(&time).ok())
                .map(|time| time.with_timezone(&Utc)),
            refused: text(detail, "/errorCode").filter(|code| !code.is_empty()),
        }),
        _ => Err(Unusable::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(detail: Value) -> String {
        json!({
            "version": "0",
            "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.iam",
            "account": "111122223333",
            "region": "us-east-1",
            "detail": detail,
        })
        .to_string()
    }

    #[test]
    fn a_login_profile_call_names_its_user_account_caller_and_request() {
        let body = envelope(json!({
            "eventSource": "iam.amazonaws.com",
            "eventName": "DeleteLoginProfile",
            "eventID": "e-1",
            "eventTime": "2026-12-06T10:00:00Z",
            "recipientAccountId": "111122223333",
            "requestID": "4f3c1a9e-5b8d-4c2e-9a7f-0d1e2f3a4b5c",
            "requestParameters": {"userName": "alice"},
            "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/admin/bob"},
        }));
        assert_eq!(
            parse(&body),
            Ok(IamEvent {
                id: "e-1".into(),
                name: "DeleteLoginProfile",
                account_id: "111122223333".into(),
                user: "alice".into(),
                caller: "arn:aws:sts::111122223333:assumed-role/admin/bob".into(),
                request_id: Some("4f3c1a9e-5b8d-4c2e-9a7f-0d1e2f3a4b5c".into()),
                time: Some("2026-12-06T10:00:00Z".parse().unwrap()),
                refused: None,
            })
        );
    }

    #[test]
    fn a_refused_call_says_why() {
        let body = envelope(json!({
            "eventSource": "iam.amazonaws.com",
            "eventName": "ChangePassword",
            "eventID": "e-5",
            "recipientAccountId": "111122223333",
            "errorCode": "InvalidInput",
            "errorMessage": "The old password is incorrect.",
            "userIdentity": {"type": "IAMUser", "userName": "alice", "arn": "arn:aws:iam::111122223333:user/alice"},
        }));
        assert_eq!(
            parse(&body).unwrap().refused.as_deref(),
            Some("InvalidInput")
        );
    }

    #[test]
    fn change_password_is_about_its_caller() {
        let body = envelope(json!({
            "eventSource": "iam.amazonaws.com",
            "eventName": "ChangePassword",
            "eventID": "e-2",
            "recipientAccountId": "111122223333",
            "requestParameters": null,
            "userIdentity": {"type": "IAMUser", "userName": "alice", "arn": "arn:aws:iam::111122223333:user/alice"},
        }));
        assert_eq!(parse(&body).unwrap().user, "alice");
    }

    #[test]
    fn other_calls_and_services_are_ignored_and_garbage_is_malformed() {
        let other_call = envelope(json!({
            "eventSource": "iam.amazonaws.com", "eventName": "CreateUser", "eventID": "e-3",
            "recipientAccountId": "111122223333", "requestParameters": {"userName": "alice"},
        }));
        assert_eq!(parse(&other_call), Err(Unusable::Ignored));
        let other_service =
            json!({"source": "aws.s3", "detail": {"eventSource": "s3.amazonaws.com"}});
        assert_eq!(parse(&other_service.to_string()), Err(Unusable::Ignored));
        assert_eq!(parse("not json"), Err(Unusable::Malformed));
        assert_eq!(parse("{\"source\": \"aws.iam\"}"), Err(Unusable::Malformed));
        let no_user = envelope(json!({
            "eventSource": "iam.amazonaws.com", "eventName": "UpdateLoginProfile", "eventID": "e-4",
            "recipientAccountId": "111122223333", "requestParameters": {},
        }));
        assert_eq!(parse(&no_user), Err(Unusable::Malformed));
    }
}
