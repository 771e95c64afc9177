"""The IAM emulator for development and tests: moto's server, corrected to behave
like IAM where our operator depends on it.

Run: python hack/moto_server.py PORT

moto (PyPI `moto[server]`) gets the login-profile calls subtly wrong; the
deviations were measured against IAM's API reference. A test that runs
against uncorrected moto proves the wrong behaviour, so each correction below
restores one IAM behaviour and says which. docs/development.md lists them.

Besides the corrections there are two test hooks, both under /_lpo/ and never
part of IAM:
- GET /_lpo/calls?user=NAME: IAM and Secrets Manager calls received, by
  action, optionally only those naming one UserName (IAM) or SecretId
  (Secrets Manager), or account-wide calls (credential reports, the password
  policy) with user=account:ACCOUNT_ID: tests count calls at the emulator,
  not in the operator.
  DELETE /_lpo/calls resets the counters.
- GET /_lpo/calls?user=NAME&accepted=1: only the calls that were applied
  and answered with success (the writes IAM accepted).
- POST /_lpo/faults {"action", "user", "code", "status", "count", "mode",
  "rate", "seconds", "for_seconds"}: faults for the calls of ACTION naming
  USER (SecretId for Secrets Manager); both are shell-style patterns
  ("*", "burst-17-*"). Modes:
  - "error" (default): answer with that error instead of applying the call
    (Throttling, ServiceFailure, AccessDenied, DecryptionFailure, ...);
  - "lost": apply the call, then answer with that error (a lost answer);
  - "hold": apply the call, then hold the answer (IAM's own, success or
    refusal) until POST /_lpo/release (or 120 s), so a test can kill the
    caller after IAM applied a write, or act while the caller waits; with
    CODE, the call is not applied and the held answer is that error;
  - "delay": wait SECONDS, then apply and answer normally.
  COUNT calls are affected (default 1; unlimited with RATE), each with
  probability RATE (default 1), for FOR_SECONDS from now (default: no end).
  DELETE /_lpo/faults removes them all; DELETE /_lpo/faults?user=PATTERN
  only those whose USER is exactly PATTERN.
- GET /_lpo/held: the calls being held; POST /_lpo/release[?user=U] answers
  them (only U's with ?user=).
- POST /_lpo/clock {"account", "advance_seconds"}: moves that AWS account's
  clock forward (password changes, sign-ins and credential reports made
  after it carry the later time), so rules over weeks run in seconds. Per
  account, so tests in other accounts are not affected.
- POST /_lpo/sign-in {"account", "user"}: records a console sign-in of USER
  (the credential report's password_last_used), at the account's clock.

Several AWS accounts live in the one process, as in moto: credentials from
STS AssumeRole act in the account of the role's ARN. One correction applies:
moto lets anyone assume any role, even one that does not exist; here, as in
IAM, the role must exist in its account and its trust policy's
`sts:ExternalId` condition, if any, must be met (AccessDenied otherwise).
`OrganizationAccountAccessRole` exists in every account, as AWS Organizations
creates it in the accounts it makes: tests use it to set up other accounts.
STS calls are counted by RoleArn (GET /_lpo/calls?user=ROLE_ARN). Every
call is also counted by that key and the caller's access key id
(user=KEY@ACCESS_KEY_ID), apart from the totals GET /_lpo/calls answers
with no user (the benchmark's), which count each call once.

Calls signed by an IAM user or a role session are authorized against that
principal's identity policies (hack/authorization.py): moto authorizes none.

AWS Organizations' centralized root access (STS AssumeRoot and root's login
profile in its sessions), which moto lacks, is hack/root_access.py.

IAM's CloudTrail events through EventBridge (to an SQS queue a rule
targets), which moto's IAM does not emit, are hack/cloudtrail.py.
"""

from __future__ import annotations

import collections
import datetime
import fnmatch
import json
import os
import random
import re
import sys
import threading
import time

from moto.core.utils import utcnow
from moto.iam import models as iam_models
from moto.iam import responses as iam_responses
from moto.core.exceptions import JsonRESTError
from moto.core.utils import camelcase_to_underscores
from moto.iam.exceptions import IAMException, NotFoundException, ValidationError
from moto.secretsmanager.responses import SecretsManagerResponse
from moto.server import DomainDispatcherApplication, create_backend_app
from moto.sts import models as sts_models
from moto.sts.exceptions import STSClientError
from moto.sts.responses import TokenResponse
from werkzeug.serving import run_simple
from werkzeug.wrappers import Request, Response

# Centralized root access (AssumeRoot), in a module of its own (not named
# moto_*: moto reads a service name from the module of an exception).
import authorization
import cloudtrail
import root_access

IAMBackend = iam_models.IAMBackend
IAMResponse = iam_responses.IamResponse
User = iam_models.User


class PasswordPolicyViolation(IAMException):
    code = "PasswordPolicyViolation"


class InvalidUserType(IAMException):
    code = "InvalidUserType"


# --- IAM's password rules --------------------------------------------------

# IAM refuses any password outside this pattern before it looks at the policy
# (moto enforces neither).
PASSWORD_PATTERN = re.compile(r"[\t\n\r\u0020-\u00ff]{1,128}")
SYMBOLS = set("!@#$%^&*()_+-=[]{}|'")


def check_password(backend: IAMBackend, user: User, password: str) -> None:
    if not PASSWORD_PATTERN.fullmatch(password or ""):
        raise ValidationError(
            "1 validation error detected: Value at 'password' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+"
        )
    classes = {
        "uppercase": any(c.isascii() and c.isupper() for c in password),
        "lowercase": any(c.isascii() and c.islower() for c in password),
        "numbers": any(c.isdigit() for c in password),
        "symbols": any(c in SYMBOLS for c in password),
    }
    policy = backend.account_password_policy
    if policy is None:
        # No custom policy: AWS's default rules apply (iam-facts.md).
        if len(password) < 8 or sum(classes.values()) < 3 or password == user.name:
            raise PasswordPolicyViolation(
                "Password does not conform to the account password policy."
            )
    else:
        broken = (
            len(password) < policy.minimum_password_length
            or (policy.require_uppercase_characters and not classes["uppercase"])
            or (policy.require_lowercase_characters and not classes["lowercase"])
            or (policy.require_numbers and not classes["numbers"])
            or (policy.require_symbols and not classes["symbols"])
        )
        if broken:
            raise PasswordPolicyViolation(
                "Password does not conform to the account password policy."
            )
        reuse = policy.password_reuse_prevention or 0
        if reuse and password in user.lpo_history[-reuse:]:
            raise PasswordPolicyViolation(
                "Password was used previously and cannot be reused (PasswordReusePrevention)."
            )


# Seconds each AWS account's clock is ahead of the real one (POST /_lpo/clock).
clock_offsets: dict[str, float] = {}


def now_in(account_id: str) -> datetime.datetime:
    return utcnow() + datetime.timedelta(seconds=clock_offsets.get(account_id, 0.0))


def set_password(user: User, password: str) -> None:
    user.password = password
    user.lpo_history.append(password)
    # The credential report's password_last_changed (moto reports the user's
    # creation date forever).
    user.lpo_password_last_changed = now_in(user.account_id)


# Per-user state moto does not keep.
User.lpo_history = []  # type: ignore[attr-defined]
User.lpo_profile_create_date = None  # type: ignore[attr-defined]
User.lpo_password_last_changed = None  # type: ignore[attr-defined]


# --- Corrected backend operations ------------------------------------------


def create_login_profile(
    self: IAMBackend, user_name: str, password: str, password_reset_required: bool = False
) -> User:
    user = self.get_user(user_name)
    if user.password:
        raise iam_models.EntityAlreadyExists(f"Login Profile for user {user_name} already exists.")
    check_password(self, user, password)
    if not isinstance(user.lpo_history, list) or user.lpo_history is User.lpo_history:
        user.lpo_history = []
    set_password(user, password)
    # CreateLoginProfile honours PasswordResetRequired (moto ignored it).
    user.password_reset_required = bool(password_reset_required)
    # CreateDate is the profile's creation date, not the user's.
    user.lpo_profile_create_date = now_in(user.account_id)
    return user


def update_login_profile(
    self: IAMBackend, user_name: str, password: str | None, password_reset_required: bool | None
) -> User:
    user = self.get_user(user_name)
    if not user.password:
        raise NotFoundException(f"Login Profile for User {user_name} cannot be found.")
    # Without Password, IAM keeps the password (moto deleted the profile);
    # without PasswordResetRequired, IAM keeps the flag.
    if password is not None:
        check_password(self, user, password)
        set_password(user, password)
    if password_reset_required is not None:
        user.password_reset_required = password_reset_required
    return user


def delete_login_profile(self: IAMBackend, user_name: str) -> None:
    user = self.get_user(user_name)
    if not user.password:
        raise NotFoundException(f"Login Profile for User {user_name} cannot be found.")
    user.password = None
    user.password_reset_required = False
    user.lpo_profile_create_date = None




def profile_result(user: User) -> dict:
    return {
        "LoginProfile": {
            "UserName": user.name,
            "CreateDate": user.lpo_profile_create_date or user.create_date,
            "PasswordResetRequired": user.password_reset_required,
        }
    }


def optional_bool(response: IAMResponse, name: str) -> bool | None:
    value = response._get_param(name)
    if value is None:
        return None
    return str(value).lower() == "true"


def response_create_login_profile(self: IAMResponse):
    user = self.backend.create_login_profile(
        self._get_param("UserName"),
        self._get_param("Password"),
        optional_bool(self, "PasswordResetRequired") or False,
    )
    return iam_responses.ActionResult(profile_result(user))


def response_get_login_profile(self: IAMResponse):
    user = self.backend.get_login_profile(self._get_param("UserName"))
    return iam_responses.ActionResult(profile_result(user))


def response_update_login_profile(self: IAMResponse):
    self.backend.update_login_profile(
        self._get_param("UserName"),
        self._get_param("Password"),
        optional_bool(self, "PasswordResetRequired"),
    )
    return iam_responses.EmptyResult()


def response_change_password(self: IAMResponse):
    """ChangePassword: a user changing their own password (moto lacks it).
    Like IAM it needs the caller's own access key, the old password, a new one
    that meets the policy, and it clears PasswordResetRequired."""
    user = self.backend.get_user_from_access_key_id(self.get_access_key())
    if user is None:
        raise InvalidUserType("Only IAM users can change their own password.")
    if not user.password:
        raise NotFoundException(f"Login Profile for User {user.name} cannot be found.")
    if self._get_param("OldPassword") != user.password:
        raise iam_models.InvalidInput("The old password is incorrect.")
    new_password = self._get_param("NewPassword")
    check_password(self.backend, user, new_password)
    set_password(user, new_password)
    user.password_reset_required = False
    return iam_responses.EmptyResult()




# --- Credential report: password_last_changed -------------------------------

original_to_csv = User.to_csv


REPORT_TIME = "%Y-%m-%dT%H:%M:%S+00:00"


def to_csv(self: User) -> str:
    fields = original_to_csv(self).split(",")
    # Column 6 is password_last_changed; moto always wrote the user's creation date.
    changed = self.lpo_password_last_changed if self.password else None
    if not self.password:
        fields[5] = "N/A"
    elif changed:
        fields[5] = changed.strftime(REPORT_TIME)
    # Column 7, password_next_rotation: moto writes "not_supported"; IAM
    # writes the last change plus the policy's MaxPasswordAge, or N/A when
    # the policy sets none (or the user has no password).
    policy = iam_models.iam_backends[self.account_id]["aws"].account_password_policy
    max_age = getattr(policy, "max_password_age", None) if policy else None
    if changed and max_age:
        fields[6] = (changed + datetime.timedelta(days=int(max_age))).strftime(REPORT_TIME)
    else:
        fields[6] = "N/A"
    return ",".join(fields)


# --- Credential report: when it was generated --------------------------------

IAMBackend.lpo_report_generated = None  # type: ignore[attr-defined]
IAMBackend.lpo_report_rows = None  # type: ignore[attr-defined]
original_generate_report = IAMBackend.generate_report
original_get_credential_report = IAMBackend.get_credential_report


def generate_report(self: IAMBackend) -> None:
    # moto answers GetCredentialReport with GeneratedTime 2015-02-02T20:02:02Z
    # forever, and writes the rows when the report is read; IAM serves a
    # snapshot: the rows as of GenerateCredentialReport, unchanged until it
    # makes a new one, which it does only when the last is over 4 hours old
    # ("IAM generates a new report if the existing one is more than four
    # hours old"; the account's clock here).
    now = now_in(self.account_id)
    last = self.lpo_report_generated
    original_generate_report(self)
    if last is None or now - last > datetime.timedelta(hours=4):
        self.lpo_report_generated = now
        self.lpo_report_rows = original_get_credential_report(self)


def get_credential_report(self: IAMBackend) -> str:
    if self.lpo_report_rows is None:
        return original_get_credential_report(self)  # ReportNotPresent
    return self.lpo_report_rows


def response_get_credential_report(self: IAMResponse):
    report = self.backend.get_credential_report()
    generated = self.backend.lpo_report_generated or now_in(self.backend.account_id)
    return iam_responses.ActionResult({
        "Content": report,
        "ReportFormat": "text/csv",
        "GeneratedTime": generated.strftime("%Y-%m-%dT%H:%M:%SZ"),
    })




# --- User names are not distinguished by case -------------------------------


class UserNames(dict):
    """IAM's users by name, compared as IAM compares them: "user names are not
    distinguished by case; you cannot create users named both TESTUSER and
    testuser", and a call naming a user in another case finds it. Each user
    keeps the name it was created with (what IAM answers and lists). moto
    keys its users by the exact name: `Bob` and `bob` were two users."""

    def __init__(self, users=()):
        super().__init__()
        self.folded: dict[str, str] = {}
        for name, user in dict(users).items():
            self[name] = user

    def stored(self, name):
        return self.folded.get(name.lower(), name) if isinstance(name, str) else name

    def __contains__(self, name):
        return dict.__contains__(self, self.stored(name))

    def __getitem__(self, name):
        return dict.__getitem__(self, self.stored(name))

    def get(self, name, default=None):
        return dict.get(self, self.stored(name), default)

    def __setitem__(self, name, user):
        existing = self.folded.get(name.lower())
        if existing is not None and existing != name:
            dict.__delitem__(self, existing)
        self.folded[name.lower()] = name
        dict.__setitem__(self, name, user)

    def __delitem__(self, name):
        stored = self.stored(name)
        dict.__delitem__(self, stored)
        self.folded.pop(stored.lower(), None)

    def pop(self, name, *default):
        stored = self.stored(name)
        if dict.__contains__(self, stored):
            self.folded.pop(stored.lower(), None)
        return dict.pop(self, stored, *default)


original_backend_init = IAMBackend.__init__


def backend_init(self: IAMBackend, *args, **kwargs) -> None:
    original_backend_init(self, *args, **kwargs)
    self.users = UserNames(self.users)


# The role AWS Organizations creates in each member account.
ORGANIZATION_ROLE = "OrganizationAccountAccessRole"


class StsAccessDenied(STSClientError):
    code = "AccessDenied"


def required_external_id(trust_policy: str) -> str | None:
    """The sts:ExternalId a trust policy's conditions ask for, if any."""
    try:
        document = json.loads(trust_policy)
    except (TypeError, ValueError):
        return None
    statements = document.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        for values in (statement.get("Condition") or {}).values():
            if "sts:ExternalId" in values:
                wanted = values["sts:ExternalId"]
                return wanted[0] if isinstance(wanted, list) else wanted
    return None


original_assume_role = sts_models.STSBackend.assume_role


def assume_role(self, region_name, role_session_name, role_arn, policy, duration, external_id):
    """IAM refuses to let anyone assume a role that does not exist, or whose
    trust policy asks for another external id."""
    match = re.match(r"^arn:aws[a-z-]*:iam::([0-9]{12}):role/(?:.*/)?([^/]+)$", role_arn or "")
    if not match:
        raise StsAccessDenied(f"not authorized to perform: sts:AssumeRole on resource: {role_arn}")
    account_id, role_name = match.groups()
    if role_name != ORGANIZATION_ROLE:
        iam = iam_models.iam_backends[account_id]["aws"]
        role = next((r for r in iam.roles.values() if r.name == role_name), None)
        if role is None:
            raise StsAccessDenied(f"not authorized to perform: sts:AssumeRole on resource: {role_arn}")
        wanted = required_external_id(role.assume_role_policy_document)
        if wanted is not None and wanted != external_id:
            raise StsAccessDenied(f"not authorized to perform: sts:AssumeRole on resource: {role_arn}")
    return original_assume_role(self, region_name, role_session_name, role_arn, policy, duration, external_id)


def apply_corrections() -> None:
    IAMBackend.__init__ = backend_init
    sts_models.STSBackend.assume_role = assume_role
    IAMBackend.create_login_profile = create_login_profile
    IAMBackend.update_login_profile = update_login_profile
    IAMBackend.delete_login_profile = delete_login_profile
    IAMResponse.create_login_profile = response_create_login_profile
    IAMResponse.get_login_profile = response_get_login_profile
    IAMResponse.update_login_profile = response_update_login_profile
    IAMResponse.change_password = response_change_password
    User.to_csv = to_csv
    IAMBackend.generate_report = generate_report
    IAMBackend.get_credential_report = get_credential_report
    IAMResponse.get_credential_report = response_get_credential_report


# LPO_MOTO_UNPATCHED=1 serves plain moto (with the test hooks), to show that
# each test of a correction fails without it (docs/development.md).
if os.environ.get("LPO_MOTO_UNPATCHED") != "1":
    apply_corrections()
    root_access.apply_corrections()
    authorization.apply_corrections()
    cloudtrail.apply_corrections(now_in)


# --- Test hooks: call counting and fault injection --------------------------

calls_lock = threading.Lock()
calls: collections.Counter = collections.Counter()
# The same calls by (action, KEY@ACCESS_KEY_ID), apart: the totals (GET
# /_lpo/calls with no user) count each call once.
calls_by_caller: collections.Counter = collections.Counter()
accepted: collections.Counter = collections.Counter()
faults: list[dict] = []
held: list[dict] = []
release_held = threading.Condition(calls_lock)


def matching_fault(action: str, key: str) -> dict | None:
    """The first active fault for this call, consumed by one (calls_lock held)."""
    now = time.monotonic()
    for candidate in faults:
        if not (fnmatch.fnmatchcase(action, candidate["action"]) and fnmatch.fnmatchcase(key, candidate["user"])):
            continue
        if candidate["count"] <= 0 or now > candidate["until"]:
            continue
        if random.random() >= candidate["rate"]:
            continue
        candidate["count"] -= 1
        return candidate
    return None


def hold_until_released(action: str, key: str) -> None:
    """Keeps a call's answer until POST /_lpo/release (or 120 s)."""
    entry = {"action": action, "user": key}
    with calls_lock:
        held.append(entry)
        release_held.wait_for(lambda: entry not in held, timeout=120)
        if entry in held:
            held.remove(entry)


def count_and_inject(response_class, key_param: str, make_error) -> None:
    """Wraps a moto response class: counts each call by (action, the value of
    key_param), and applies a matching fault (see the module's docstring)."""
    original = response_class.call_action

    def answer_with_error(self, action: str, fault: dict):
        # Answer through moto's own error path, so the error is serialized
        # the way the service's protocol does it.
        def fail():
            raise make_error(fault)

        setattr(self, camelcase_to_underscores(action), fail)
        setattr(self, cloudtrail.INJECTED, True)
        status, headers, body = original(self)
        return fault.get("status", status), headers, body

    def apply(self, action: str, key: str):
        status, headers, body = original(self)
        if int(status) < 300:
            with calls_lock:
                accepted[(action, key)] += 1
        return status, headers, body

    def call_action(self):
        action = self._get_action()
        # Account-wide calls (no UserName: credential reports, the password
        # policy) are counted per account.
        key = self._get_param(key_param) or f"account:{self.current_account}"
        with calls_lock:
            calls[(action, key)] += 1
            # And per caller: one process's calls among others' that share
            # its identity but not its access key.
            calls_by_caller[(action, f"{key}@{self.get_access_key()}")] += 1
            fault = matching_fault(action, key)
        mode = fault.get("mode", "error") if fault else None
        if mode is None:
            return apply(self, action, key)
        if mode == "delay":
            time.sleep(float(fault.get("seconds", 1)))
            return apply(self, action, key)
        if mode == "error":
            return answer_with_error(self, action, fault)
        if mode == "hold" and "code" in fault:
            # A refusal, held: not applied, answered once released.
            hold_until_released(action, key)
            return answer_with_error(self, action, fault)
        result = apply(self, action, key)
        if mode == "lost":
            # Applied; the caller never learns it.
            return answer_with_error(self, action, fault)
        # "hold": applied (or refused by IAM itself); the answer waits until
        # the test releases it.
        hold_until_released(action, key)
        return result

    response_class.call_action = call_action


def iam_error(fault: dict) -> Exception:
    error_class = type(fault["code"], (IAMException,), {"code": fault["code"]})
    return error_class(f"injected by the test harness: {fault['code']}")


def json_error(fault: dict) -> Exception:
    error = JsonRESTError(fault["code"], f"injected by the test harness: {fault['code']}")
    error.code = fault.get("status", 400)
    return error


count_and_inject(IAMResponse, "UserName", iam_error)
count_and_inject(SecretsManagerResponse, "SecretId", json_error)
count_and_inject(TokenResponse, "RoleArn", iam_error)


class TestHooks:
    """WSGI wrapper that answers /_lpo/* and hands everything else to moto."""

    def __init__(self, app) -> None:
        self.app = app

    def __call__(self, environ, start_response):
        if not environ.get("PATH_INFO", "").startswith("/_lpo/"):
            return self.app(environ, start_response)
        request = Request(environ)
        if request.path == "/_lpo/calls" and request.method == "GET":
            user = request.args.get("user")
            sources = [accepted] if request.args.get("accepted") else [calls]
            if user is not None and not request.args.get("accepted"):
                sources.append(calls_by_caller)
            with calls_lock:
                counted = collections.Counter()
                for source in sources:
                    for (action, name), n in source.items():
                        if user is None or name == user:
                            counted[action] += n
            body = json.dumps(dict(counted))
        elif request.path == "/_lpo/calls" and request.method == "DELETE":
            with calls_lock:
                calls.clear()
                calls_by_caller.clear()
                accepted.clear()
            body = "{}"
        elif request.path == "/_lpo/faults" and request.method == "POST":
            fault = json.loads(request.get_data())
            fault.setdefault("rate", 1.0)
            fault.setdefault("count", 1 if fault["rate"] >= 1.0 else 10**9)
            fault["until"] = time.monotonic() + float(fault.get("for_seconds", 10**9))
            with calls_lock:
                faults.append(fault)
            body = "{}"
        elif request.path == "/_lpo/faults" and request.method == "DELETE":
            user = request.args.get("user")
            with calls_lock:
                faults[:] = [f for f in faults if user is not None and f["user"] != user]
            body = "{}"
        elif request.path == "/_lpo/held" and request.method == "GET":
            with calls_lock:
                body = json.dumps({"held": list(held)})
        elif request.path == "/_lpo/release" and request.method == "POST":
            # ?user= answers only that user's calls: tests hold in parallel.
            user = request.args.get("user")
            with calls_lock:
                kept = [entry for entry in held if user is not None and entry["user"] != user]
                released = len(held) - len(kept)
                held[:] = kept
                release_held.notify_all()
            body = json.dumps({"released": released})
        elif request.path == "/_lpo/clock" and request.method == "POST":
            asked = json.loads(request.get_data())
            account = str(asked["account"])
            clock_offsets[account] = clock_offsets.get(account, 0.0) + float(asked["advance_seconds"])
            body = json.dumps({"now": now_in(account).isoformat()})
        elif request.path == "/_lpo/sign-in" and request.method == "POST":
            asked = json.loads(request.get_data())
            account = str(asked["account"])
            user = iam_models.iam_backends[account]["aws"].get_user(asked["user"])
            user.password_last_used = now_in(account)
            body = json.dumps({"password_last_used": user.password_last_used.isoformat()})
        elif (root_answer := root_access.hook(request)) is not None:
            body = root_answer
        elif (denied := authorization.hook(request)) is not None:
            body = denied
        elif (events := cloudtrail.hook(request)) is not None:
            body = events
        elif request.path == "/_lpo/health":
            body = json.dumps({"ok": True, "since": started.isoformat()})
        else:
            return Response("unknown test hook\n", status=404)(environ, start_response)
        return Response(body, mimetype="application/json")(environ, start_response)


started = datetime.datetime.now(datetime.timezone.utc)


def main() -> None:
    port = int(sys.argv[1])
    app = TestHooks(DomainDispatcherApplication(create_backend_app))
    run_simple("127.0.0.1", port, app, threaded=True, use_reloader=False)


if __name__ == "__main__":
    main()
