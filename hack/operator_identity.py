"""The operator's AWS identity in the development environment: an IAM user
whose only permissions are the policy files in docs/ that a user attaches,
with their placeholders filled as this environment needs. The IAM emulator
authorizes every call of that user against them (hack/authorization.py), so
an action missing from a shipped file fails the test that needs it.

  python hack/operator_identity.py create USER
      creates USER (or gives it a new access key), attaches every shipped
      file as an inline policy, prints `export` lines for its key
  python hack/operator_identity.py policy FILE [--without ACTION]
      prints docs/FILE filled in, optionally without one action
"""

from __future__ import annotations

import json
import os
import sys

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What the tests name: Secrets Manager secrets under prod/ (the test
# IAMAccount admits the same prefix), and the roles IAMAccounts assume.
SECRET_PREFIX = "prod/"
ROLE_NAMES = ["loginprofile-operator*", "guarded", "OrganizationAccountAccessRole"]

SHIPPED = ["iam-policy.json", "iam-policy-assume-role.json", "iam-policy-root.json",
           "iam-policy-events.json"]
# The queues of IAM events the tests make (tests/support/events.rs), in any account.
QUEUE_ARN = "arn:aws:sqs:us-east-1:*:lpo-events-*"


def filled(name: str, without: str | None = None) -> dict:
    with open(os.path.join(ROOT, "docs", name)) as f:
        text = f.read().replace("REPLACE-WITH-YOUR-PREFIX", SECRET_PREFIX)
        document = json.loads(text.replace(
            "arn:aws:sqs:us-east-1:REPLACE-WITH-YOUR-ACCOUNT-ID:REPLACE-WITH-YOUR-QUEUE-NAME", QUEUE_ARN))
    for statement in document["Statement"]:
        resources = statement["Resource"]
        if isinstance(resources, str) and "REPLACE-WITH-YOUR-ROLE-NAME" in resources:
            statement["Resource"] = [resources.replace("REPLACE-WITH-YOUR-ROLE-NAME", r) for r in ROLE_NAMES]
        if without is not None:
            actions = statement["Action"]
            actions = [a for a in (actions if isinstance(actions, list) else [actions]) if a != without]
            statement["Action"] = actions
    document["Statement"] = [s for s in document["Statement"] if s["Action"]]
    return document


def create(user: str) -> None:
    iam = boto3.client("iam")
    try:
        iam.create_user(UserName=user, Path="/operator/")
    except iam.exceptions.EntityAlreadyExistsException:
        for key in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]:
            iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
    for name in SHIPPED:
        iam.put_user_policy(UserName=user, PolicyName=name.removesuffix(".json"),
                            PolicyDocument=json.dumps(filled(name)))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    print(f"export LPO_OPERATOR_AWS_ACCESS_KEY_ID={key['AccessKeyId']}")
    print(f"export LPO_OPERATOR_AWS_SECRET_ACCESS_KEY={key['SecretAccessKey']}")


def main() -> None:
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "create":
        create(args[1])
    elif len(args) in (2, 4) and args[0] == "policy":
        without = args[3] if len(args) == 4 and args[2] == "--without" else None
        print(json.dumps(filled(args[1], without)))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
