//! IAM's CloudTrail events as an AWS account delivers them: an SQS queue in
//! us-east-1 fed by an EventBridge rule on the account's default bus (the
//! setup docs/events.md describes), and the emulator's knobs for delivery
//! (hack/cloudtrail.py).

use serde_json::{Value, json};

use super::*;

/// The EventBridge rule's pattern: IAM's management calls the operator
/// acts on, as CloudTrail records them.
pub const IAM_EVENT_PATTERN: &str = r#"{"source": ["aws.iam"], "detail-type": ["AWS API Call via CloudTrail"], "detail": {"eventSource": ["iam.amazonaws.com"], "eventName": ["CreateLoginProfile", "UpdateLoginProfile", "DeleteLoginProfile", "ChangePassword", "DeleteUser", "TagUser", "UntagUser"]}}"#;

/// An SQS queue that an EventBridge rule in `account` feeds with IAM's
/// events; the rule and the queue are deleted when it is dropped.
pub struct EventQueue {
    pub account: String,
    pub url: String,
    name: String,
}

impl EventQueue {
    /// Creates a queue, the rule and its target in `account` (boto3, as
    /// the account's administrator), named `lpo-events-*`: the queues the
    /// test environment's operator may read (hack/operator_identity.py).
    pub fn create(account: &str) -> Self {
        let name = unique("lpo-events");
        let script = format!(
            "{session}\
             sqs = s.client('sqs', region_name='us-east-1')\n\
             events = s.client('events', region_name='us-east-1')\n\
             url = sqs.create_queue(QueueName='{name}')['QueueUrl']\n\
             arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=['QueueArn'])['Attributes']['QueueArn']\n\
             events.put_rule(Name='{name}', EventPattern=sys.stdin.read())\n\
             events.put_targets(Rule='{name}', Targets=[{{'Id': 'queue', 'Arn': arn}}])\n\
             print(url)\n",
            session = administrator_session(account),
        );
        let url = python(&script, IAM_EVENT_PATTERN).trim().to_string();
        Self {
            account: account.to_string(),
            url,
            name,
        }
    }

    /// Puts a message in the queue as it is (what a misrouted rule or a
    /// stranger with access could put there).
    pub fn send(&self, body: &str) {
        let script = format!(
            "{session}\
             s.client('sqs', region_name='us-east-1').send_message(QueueUrl='{url}', MessageBody=sys.stdin.read())\n",
            session = administrator_session(&self.account),
            url = self.url,
        );
        python(&script, body);
    }

    /// The messages waiting in the queue (received and deleted), each body
    /// parsed as JSON.
    pub fn drain(&self) -> Vec<Value> {
        let script = format!(
            "{session}\
             sqs = s.client('sqs', region_name='us-east-1')\n\
             bodies = []\n\
             while True:\n\
             \x20   got = sqs.receive_message(QueueUrl='{url}', MaxNumberOfMessages=10, WaitTimeSeconds=0).get('Messages', [])\n\
             \x20   if not got: break\n\
             \x20   for m in got:\n\
             \x20       bodies.append(json.loads(m['Body']))\n\
             \x20       sqs.delete_message(QueueUrl='{url}', ReceiptHandle=m['ReceiptHandle'])\n\
             print(json.dumps(bodies))\n",
            session = administrator_session(&self.account),
            url = self.url,
        );
        serde_json::from_str(&python(&script, "")).expect("a JSON list")
    }

    /// Sets how the emulator delivers this account's events: after
    /// `delay_seconds`, and a share `drop_rate` of them not at all.
    pub fn delivery(&self, delay_seconds: f64, drop_rate: f64) {
        let body = json!({"account": self.account, "delay_seconds": delay_seconds, "drop_rate": drop_rate});
        let output = Command::new("curl")
            .args([
                "-sf",
                "-X",
                "POST",
                &format!("{}/_lpo/events", env().iam_endpoint()),
                "-d",
                &body.to_string(),
            ])
            .output()
            .expect("curl runs");
        assert!(output.status.success(), "the emulator refused /_lpo/events");
    }
}

impl Drop for EventQueue {
    fn drop(&mut self) {
        let script = format!(
            "{session}\
             events = s.client('events', region_name='us-east-1')\n\
             events.remove_targets(Rule='{name}', Ids=['queue'])\n\
             events.delete_rule(Name='{name}')\n\
             s.client('sqs', region_name='us-east-1').delete_queue(QueueUrl='{url}')\n",
            session = administrator_session(&self.account),
            name = self.name,
            url = self.url,
        );
        let mut command = env().command("python");
        command.args(["-c", &script]);
        // Best effort: a second panic in a Drop would abort the test binary.
        let _ = run_with_stdin(command, "");
    }
}

/// An event as EventBridge delivers CloudTrail's record, made up by a test:
/// IAM call `name` on `user` in `account` (ChangePassword: by `user`), with
/// `detail`'s other fields (eventTime, errorCode, ...) added.
pub fn forged_event(id: &str, name: &str, account: &str, user: &str, detail: Value) -> String {
    let mut event = json!({
        "version": "0", "id": id, "source": "aws.iam", "account": account,
        "detail-type": "AWS API Call via CloudTrail", "region": "us-east-1",
        "detail": {"eventSource": "iam.amazonaws.com", "eventName": name,
                   "eventID": id, "recipientAccountId": account},
    });
    let about = if name == "ChangePassword" {
        json!({"userIdentity": {"type": "IAMUser", "userName": user}})
    } else {
        json!({"requestParameters": {"userName": user}})
    };
    for (key, value) in about
        .as_object()
        .into_iter()
        .chain(detail.as_object())
        .flatten()
    {
        event["detail"][key] = value.clone();
    }
    event.to_string()
}

/// TagUser `key=value` on `user` as `account`'s administrator (boto3);
/// returns the request id IAM's answer carried.
pub fn tag_user_in(account: &str, user: &str, key: &str, value: &str) -> String {
    let script = format!(
        "{session}\
         answer = s.client('iam').tag_user(UserName='{user}', Tags=[{{'Key': '{key}', 'Value': '{value}'}}])\n\
         print(answer['ResponseMetadata']['RequestId'])\n",
        session = administrator_session(account),
    );
    python(&script, "").trim().to_string()
}

/// Python lines that make `s`, a boto3 session acting as `account`'s
/// administrator (the role AWS Organizations makes in each account).
fn administrator_session(account: &str) -> String {
    format!(
        "import boto3, json, sys\n\
         c = boto3.client('sts').assume_role(RoleArn='arn:aws:iam::{account}:role/OrganizationAccountAccessRole', RoleSessionName='tests')['Credentials']\n\
         s = boto3.Session(aws_access_key_id=c['AccessKeyId'], aws_secret_access_key=c['SecretAccessKey'], aws_session_token=c['SessionToken'])\n"
    )
}

fn python(script: &str, input: &str) -> String {
    let mut command = env().command("python");
    command.args(["-c", script]);
    stdout_of(run_with_stdin(command, input), "boto3 (events)")
}
