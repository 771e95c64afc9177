"""Identity-policy authorization for the IAM emulator (hack/moto_server.py).

moto authorizes nothing by default, and its optional check
(INITIAL_NO_AUTH_ACTION_COUNT) matches every IAM and STS call against the
resource "*", evaluates no condition key of an identity policy, and refuses
any caller it does not know. Here, as in IAM: a call signed with an IAM
user's access key or a role session's credentials is allowed only if an
identity policy of that principal (inline or attached, the user's groups
included) allows the action on the resource the call names, under the
statement's conditions, and no statement denies it; otherwise it is refused
with AccessDenied (AccessDeniedException in Secrets Manager) naming the
principal, the action and the resource.

Calls signed with credentials that are neither (the tests' own `testing`
key, and root sessions, which root_access.py confines to their task
policies) are the account root's and are allowed. A session of
OrganizationAccountAccessRole has AdministratorAccess, the policy AWS
Organizations attaches to that role.

Resources: the IAM user a call names (its ARN, with its path; for
ChangePassword, the caller); the role of AssumeRole; `arn:aws:iam::ID:root`
of AssumeRoot's target account; the secret of a Secrets Manager call; the
queue of an SQS call; `*` otherwise. Condition keys: aws:TagKeys (the keys TagUser writes),
iam:ResourceTag/KEY and aws:ResourceTag/KEY (the named user's tags),
sts:TaskPolicyArn (AssumeRoot's). Operators: StringEquals, StringLike,
StringNotEquals, StringNotLike, each with ForAllValues:/ForAnyValue: and
IfExists. A condition this model does not know fails closed (no allow), so
a policy that relies on one is refused here rather than passed unchecked.

GET /_lpo/denied lists the calls refused this way (principal, action,
resource), for tests.
"""

from __future__ import annotations

import fnmatch
import json
import re
import threading

from moto.core.exceptions import JsonRESTError
from moto.core.utils import camelcase_to_underscores
from moto.iam import models as iam_models
from moto.iam.exceptions import IAMException
from moto.iam.responses import IamResponse
from moto.secretsmanager import models as sm_models
from moto.secretsmanager.responses import SecretsManagerResponse
from moto.core.exceptions import ServiceException
from moto.sqs.responses import SQSResponse
from moto.sts import models as sts_models
from moto.sts.exceptions import STSClientError
from moto.sts.responses import TokenResponse

ADMINISTRATOR_ROLE = "OrganizationAccountAccessRole"
ADMINISTRATOR_ACCESS = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}

lock = threading.Lock()
denied_calls: list[dict] = []


class IamAccessDenied(IAMException):
    code = "AccessDenied"

    def __init__(self, message: str):
        super().__init__(message)
        self.code = "AccessDenied"


class StsAccessDenied(STSClientError):
    code = "AccessDenied"


class SqsAccessDenied(ServiceException):
    def __init__(self, message: str):
        super().__init__("AccessDenied", message)


class SecretsManagerAccessDenied(JsonRESTError):
    def __init__(self, message: str):
        super().__init__("AccessDeniedException", message)


# --- Who signed the call -----------------------------------------------------


# Every access key moto makes, by id: an IAM user's (account, user name),
# and every role session. Looked up per call, so a call costs the same with
# 20,000 users as with one (scanning them per call did not).
user_keys: dict[str, tuple[str, str]] = {}
role_sessions: dict[str, object] = {}


def remember_user_key(original):
    def init(self, user_name, prefix, account_id, *args, **kwargs):
        original(self, user_name, prefix, account_id, *args, **kwargs)
        if user_name:
            with lock:
                user_keys[self.access_key_id] = (account_id, user_name)
    return init


def remember_role_session(original):
    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        with lock:
            role_sessions[self.access_key_id] = self
    return init


def principal_of(account_id: str, access_key_id: str):
    """(arn, policy documents) of the IAM user or role session that owns the
    key, or None for credentials the account's IAM does not hold."""
    iam = iam_models.iam_backends[account_id]["aws"]
    with lock:
        owner = user_keys.get(access_key_id)
        session = role_sessions.get(access_key_id)
    if owner is not None and owner[0] == account_id:
        user = iam.users.get(owner[1])
        # A key deleted, or its user gone, holds nothing any more.
        if user is not None and any(k.access_key_id == access_key_id for k in user.access_keys):
            return user.arn, user_policies(iam, user)
    if session is not None and session.role_arn.split(":")[4] == account_id:
        role_name = session.role_arn.split("/")[-1]
        arn = f"arn:aws:sts::{account_id}:assumed-role/{role_name}/{session.session_name}"
        if role_name == ADMINISTRATOR_ROLE:
            return arn, [ADMINISTRATOR_ACCESS]
        role = next((r for r in iam.roles.values() if r.name == role_name), None)
        return arn, role_policies(role) if role else []
    return None


def documents_of_attached(attached) -> list[dict]:
    documents = []
    for policy in attached.values() if isinstance(attached, dict) else attached:
        version = next((v for v in policy.versions if v.is_default), None)
        if version is not None:
            documents.append(json.loads(version.document))
    return documents


def user_policies(iam, user) -> list[dict]:
    documents = [json.loads(p) for p in user.policies.values()]
    documents += documents_of_attached(user.managed_policies)
    for group in iam.groups.values():
        if user in group.users:
            documents += [json.loads(p) for p in group.policies.values()]
            documents += documents_of_attached(group.managed_policies)
    return documents


def role_policies(role) -> list[dict]:
    documents = [json.loads(p) for p in role.policies.values()]
    return documents + documents_of_attached(role.managed_policies)


# --- What the call names -----------------------------------------------------


def named_user(account_id: str, name: str | None):
    if not name:
        return None
    iam = iam_models.iam_backends[account_id]["aws"]
    try:
        return iam.get_user(name)
    except Exception:  # no such user: IAM answers NoSuchEntity after authorizing
        return None


def iam_target(response, account_id: str, action: str, caller_arn: str):
    """(resource, context) of an IAM call."""
    name = response._get_param("UserName")
    if action == "ChangePassword":
        return caller_arn, {}
    user = named_user(account_id, name)
    context: dict[str, list[str]] = {}
    if name is None:
        return "*", context
    if user is not None:
        resource = user.arn
        iam = iam_models.iam_backends[account_id]["aws"]
        for tag in iam.list_user_tags(user.name):
            key, value = tag["Key"], tag["Value"]
            context[f"iam:resourcetag/{key.lower()}"] = [value]
            context[f"aws:resourcetag/{key.lower()}"] = [value]
    else:
        resource = f"arn:aws:iam::{account_id}:user/{name}"
    keys = [values[0] for param, values in response.querystring.items()
            if re.fullmatch(r"Tags\.member\.\d+\.Key", param)]
    if keys:
        context["aws:tagkeys"] = keys
    return resource, context


def sts_target(response, action: str):
    if action == "AssumeRole":
        return response._get_param("RoleArn") or "*", {}
    if action == "AssumeRoot":
        target = response._get_param("TargetPrincipal") or ""
        task = response._get_param("TaskPolicyArn.Arn")
        return f"arn:aws:iam::{target}:root", ({"sts:taskpolicyarn": [task]} if task else {})
    return "*", {}


def secret_target(response, account_id: str, region: str):
    secret_id = response._get_param("SecretId")
    if not secret_id:
        return "*", {}
    backend = sm_models.secretsmanager_backends[account_id][region]
    try:
        return backend.describe_secret(secret_id).arn, {}
    except Exception:  # no such secret: Secrets Manager says so after authorizing
        if secret_id.startswith("arn:"):
            return secret_id, {}
        return f"arn:aws:secretsmanager:{region}:{account_id}:secret:{secret_id}", {}


def queue_target(response, account_id: str, region: str):
    """The queue's ARN: its account and name are the last two parts of its URL."""
    url = response._get_param("QueueUrl") or ""
    parts = url.rstrip("/").split("/")
    if len(parts) >= 2 and re.fullmatch(r"\d{12}", parts[-2]):
        return f"arn:aws:sqs:{region}:{parts[-2]}:{parts[-1]}", {}
    return "*", {}


# --- The evaluation ----------------------------------------------------------


def listed(value) -> list:
    return value if isinstance(value, list) else [value]


def wildcard(pattern: str, value: str, case_sensitive: bool = True) -> bool:
    # IAM's wildcards are * and ? only; fnmatch's [..] classes are escaped.
    escaped = pattern.replace("[", "[[]")
    if not case_sensitive:
        return fnmatch.fnmatch(value.lower(), escaped.lower())
    return fnmatch.fnmatchcase(value, escaped)


def condition_holds(operator: str, key: str, wanted, context: dict[str, list[str]]) -> bool | None:
    """Whether one condition holds; None when this model does not know it."""
    quantifier, _, name = operator.rpartition(":")
    if_exists = name.endswith("IfExists")
    name = name.removesuffix("IfExists")
    compare = {
        "StringEquals": lambda want, have: want == have,
        "StringLike": lambda want, have: wildcard(want, have),
    }
    negated = name in ("StringNotEquals", "StringNotLike")
    base = {"StringNotEquals": "StringEquals", "StringNotLike": "StringLike"}.get(name, name)
    if base not in compare or quantifier not in ("", "ForAllValues", "ForAnyValue"):
        return None
    values = context.get(key.lower())
    wanted = [str(w) for w in listed(wanted)]

    def matches(have: str) -> bool:
        return any(compare[base](want, have) for want in wanted)

    if values is None:
        return quantifier == "ForAllValues" or if_exists or negated
    if quantifier == "ForAllValues":
        found = all(matches(v) for v in values)
    else:
        found = any(matches(v) for v in values)
    return not found if negated else found


def statement_applies(statement: dict, action: str, resource: str, context) -> bool | None:
    if "Action" in statement:
        if not any(wildcard(a, action, case_sensitive=False) for a in listed(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(wildcard(a, action, case_sensitive=False) for a in listed(statement["NotAction"])):
            return False
    if "Resource" in statement:
        if not any(wildcard(r, resource) for r in listed(statement["Resource"])):
            return False
    elif "NotResource" in statement:
        if any(wildcard(r, resource) for r in listed(statement["NotResource"])):
            return False
    for operator, conditions in (statement.get("Condition") or {}).items():
        for key, wanted in conditions.items():
            holds = condition_holds(operator, key, wanted, context)
            if not holds:
                return holds
    return True


def decide(documents: list[dict], action: str, resource: str, context) -> str:
    """"Deny" (an explicit deny), "Allow", or "Implicit" (nothing allows)."""
    allowed = False
    for document in documents:
        for statement in listed(document.get("Statement", [])):
            applies = statement_applies(statement, action, resource, context)
            if statement.get("Effect") == "Deny" and applies is not False:
                # A deny this model cannot read is taken as a deny.
                return "Deny"
            if statement.get("Effect") == "Allow" and applies:
                allowed = True
    return "Allow" if allowed else "Implicit"


# --- Hooked into moto's responses -------------------------------------------


def guard(response_class, service: str, target, error) -> None:
    original = response_class.call_action

    def call_action(self):
        account_id = self.current_account
        principal = principal_of(account_id, self.get_access_key())
        if principal is None:
            return original(self)
        arn, documents = principal
        action = self._get_action()
        if (service, action) == ("sts", "GetCallerIdentity"):
            return original(self)  # always allowed, whatever the policies say
        resource, context = target(self, account_id, action, arn)
        # SQS authorizes a batch call as its single one (DeleteMessageBatch
        # needs sqs:DeleteMessage).
        permission = f"{service}:{action.removesuffix('Batch') if service == 'sqs' else action}"
        verdict = decide(documents, permission, resource, context)
        if verdict == "Allow":
            return original(self)
        with lock:
            denied_calls.append({"principal": arn, "action": permission, "resource": resource})
        why = "an explicit deny in an identity-based policy" if verdict == "Deny" else \
            f"no identity-based policy allows the {permission} action"
        message = f"User: {arn} is not authorized to perform: {permission} on resource: {resource} because {why}"

        def refuse():
            raise error(message)

        setattr(self, camelcase_to_underscores(action), refuse)
        return original(self)

    response_class.call_action = call_action


def hook(request) -> str | None:
    """GET /_lpo/denied: the calls refused by identity policy."""
    if request.path == "/_lpo/denied" and request.method == "GET":
        with lock:
            return json.dumps({"denied": list(denied_calls)})
    if request.path == "/_lpo/denied" and request.method == "DELETE":
        with lock:
            denied_calls.clear()
        return json.dumps({})
    return None


def apply_corrections() -> None:
    iam_models.AccessKey.__init__ = remember_user_key(iam_models.AccessKey.__init__)
    sts_models.AssumedRole.__init__ = remember_role_session(sts_models.AssumedRole.__init__)
    guard(IamResponse, "iam", lambda r, account, action, arn: iam_target(r, account, action, arn), IamAccessDenied)
    guard(TokenResponse, "sts", lambda r, account, action, arn: sts_target(r, action), StsAccessDenied)
    guard(SecretsManagerResponse, "secretsmanager",
          lambda r, account, action, arn: secret_target(r, account, r.region), SecretsManagerAccessDenied)
    guard(SQSResponse, "sqs", lambda r, account, action, arn: queue_target(r, account, r.region), SqsAccessDenied)
