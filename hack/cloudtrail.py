"""CloudTrail's IAM management events, as EventBridge delivers them: moto's
IAM records none, so nothing reaches an EventBridge rule or its SQS queue.

Every IAM write the operator's event source watches (the login-profile
calls, ChangePassword, DeleteUser and the tag calls of the ownership record)
is published, once IAM applied it (also when its answer is then lost or
held) or refused it, to the default event bus of its account in us-east-1, where
IAM's management events go: `source` aws.iam, `detail-type` "AWS API Call
via CloudTrail", and a `detail` shaped like CloudTrail's record
(eventSource, eventName, eventID, eventTime, requestID, userIdentity,
requestParameters with `userName`; ChangePassword acts on the caller, named
in userIdentity). As in CloudTrail, a refused call (a wrong old password, a
password the policy refuses, an action the caller's policies do not allow)
is recorded too, with its `errorCode` and `errorMessage`; the faults the
test harness injects (hack/moto_server.py) are not IAM's answers and are
not recorded. No password is ever in a record.
moto's EventBridge then matches the bus's rules and sends to their SQS
targets.

Delivery is best effort in AWS, so a test hook sets, per account, a delay
before publishing and a share of events dropped:
- POST /_lpo/events {"account", "delay_seconds", "drop_rate"}
- GET /_lpo/events?account=ID: {"published": N, "dropped": M}
"""

from __future__ import annotations

import collections
import json
import random
import re
import sys
import threading
import uuid

from moto.events.models import events_backends
from moto.iam import models as iam_models
from moto.iam.responses import IamResponse

import authorization

EVENT_NAMES = {
    "CreateLoginProfile",
    "UpdateLoginProfile",
    "DeleteLoginProfile",
    "ChangePassword",
    "DeleteUser",
    "TagUser",
    "UntagUser",
}
# Set on a response whose answer the test harness made up (a fault), which
# IAM never gave and CloudTrail never records.
INJECTED = "lpo_injected_answer"
# IAM's management events reach EventBridge in this region only.
EVENTS_REGION = "us-east-1"

lock = threading.Lock()
# The emulator's clock of an account (its test hook moves it).
account_clock = None
knobs: dict[str, dict] = {}
published: collections.Counter = collections.Counter()
dropped: collections.Counter = collections.Counter()


def identity_of(account_id: str, access_key_id: str) -> dict:
    """CloudTrail's userIdentity of the key that signed the call."""
    with authorization.lock:
        owner = authorization.user_keys.get(access_key_id)
        session = authorization.role_sessions.get(access_key_id)
    if owner is not None and owner[0] == account_id:
        user = iam_models.iam_backends[account_id]["aws"].users.get(owner[1])
        return {
            "type": "IAMUser",
            "principalId": user.id if user else "",
            "arn": user.arn if user else f"arn:aws:iam::{account_id}:user/{owner[1]}",
            "accountId": account_id,
            "accessKeyId": access_key_id,
            "userName": owner[1],
        }
    if session is not None:
        role_name = session.role_arn.split("/")[-1]
        return {
            "type": "AssumedRole",
            "arn": f"arn:aws:sts::{account_id}:assumed-role/{role_name}/{session.session_name}",
            "accountId": account_id,
            "accessKeyId": access_key_id,
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": session.role_arn, "accountId": account_id, "userName": role_name}},
        }
    return {"type": "Root", "arn": f"arn:aws:iam::{account_id}:root", "accountId": account_id, "accessKeyId": access_key_id}


def request_parameters(response, action: str) -> dict | None:
    """What CloudTrail records of the request: never the password."""
    if action == "ChangePassword":
        return None
    parameters = {"userName": response._get_param("UserName")}
    if action in ("CreateLoginProfile", "UpdateLoginProfile"):
        reset = response._get_param("PasswordResetRequired")
        if reset is not None:
            parameters["passwordResetRequired"] = str(reset).lower() == "true"
    elif action == "TagUser":
        tags = response._get_param("Tags", [])
        parameters["tags"] = [{"key": t.get("Key"), "value": t.get("Value")} for t in tags]
    elif action == "UntagUser":
        parameters["tagKeys"] = response._get_param("TagKeys", [])
    return parameters


def request_id(headers, body) -> str:
    for name, value in dict(headers or {}).items():
        if name.lower() in ("x-amzn-requestid", "x-amz-request-id"):
            return value
    text = body.decode() if isinstance(body, bytes) else str(body or "")
    match = re.search(r"<RequestId>([^<]+)</RequestId>", text)
    return match.group(1) if match else ""


def publish(account_id: str, detail: dict) -> None:
    entry = {
        "Source": "aws.iam",
        "DetailType": "AWS API Call via CloudTrail",
        "Detail": json.dumps(detail),
    }
    try:
        events_backends[account_id][EVENTS_REGION].put_events([entry])
    except Exception as error:  # a rule's target failing fails no IAM call
        print(f"[cloudtrail] delivering {detail['eventName']} failed: {error!r}", file=sys.stderr)
    with lock:
        published[account_id] += 1


def refusal(body) -> dict:
    """A refused call's errorCode and errorMessage, from IAM's XML answer."""
    text = body.decode() if isinstance(body, bytes) else str(body or "")
    code = re.search(r"<Code>([^<]+)</Code>", text)
    message = re.search(r"<Message>([^<]*)</Message>", text)
    return {
        "errorCode": code.group(1) if code else "InternalFailure",
        "errorMessage": message.group(1) if message else "",
    }


def record(response, action: str, status, headers, body) -> None:
    account_id = response.current_account
    with lock:
        knob = knobs.get(account_id, {})
        if random.random() < float(knob.get("drop_rate", 0.0)):
            dropped[account_id] += 1
            return
    detail = {
        "eventVersion": "1.09",
        "userIdentity": identity_of(account_id, response.get_access_key()),
        "eventTime": account_clock(account_id).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": "iam.amazonaws.com",
        "eventName": action,
        "awsRegion": EVENTS_REGION,
        "sourceIPAddress": "127.0.0.1",
        "userAgent": response.headers.get("User-Agent", ""),
        "requestParameters": request_parameters(response, action),
        "responseElements": None,
        "requestID": request_id(headers, body),
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account_id,
        "eventCategory": "Management",
    }
    if int(status) >= 300:
        detail.update(refusal(body))
    delay = float(knob.get("delay_seconds", 0.0))
    if delay > 0:
        threading.Timer(delay, publish, args=(account_id, detail)).start()
    else:
        publish(account_id, detail)


def apply_corrections(clock) -> None:
    global account_clock
    account_clock = clock
    original = IamResponse.call_action

    def call_action(self):
        action = self._get_action()
        status, headers, body = original(self)
        if action in EVENT_NAMES and not getattr(self, INJECTED, False):
            record(self, action, status, headers, body)
        return status, headers, body

    IamResponse.call_action = call_action


def hook(request) -> str | None:
    if request.path != "/_lpo/events":
        return None
    if request.method == "POST":
        asked = json.loads(request.get_data())
        with lock:
            knobs[str(asked["account"])] = {
                "delay_seconds": float(asked.get("delay_seconds", 0.0)),
                "drop_rate": float(asked.get("drop_rate", 0.0)),
            }
        return json.dumps({})
    account = request.args.get("account", "")
    with lock:
        return json.dumps({"published": published[account], "dropped": dropped[account]})
