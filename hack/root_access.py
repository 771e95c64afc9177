"""AWS Organizations' centralized root access (2024-11), which moto 5.2.5 lacks
entirely: the emulator's corrections for issue 24 (RootLoginProfile).

What AWS does, and what this module makes the emulator do:
- IAM EnableOrganizationsRootCredentialsManagement / EnableOrganizationsRootSessions
  (and Disable..., ListOrganizationsFeatures): only the organization's
  management account may enable or disable them (CallerIsNotManagementAccount
  otherwise), only once trusted access for iam.amazonaws.com is enabled in
  Organizations (ServiceAccessNotEnabled), only in an organization
  (OrganizationNotFound) with all features (OrganizationNotInAllFeaturesMode);
  a delegated administrator for iam.amazonaws.com may list them. moto knows
  neither iam.amazonaws.com as a trusted service nor as one a delegated
  administrator may be registered for: both are added.
- STS AssumeRoot {TargetPrincipal, TaskPolicyArn, DurationSeconds}: only from
  the management account or a delegated administrator for iam.amazonaws.com,
  only with the matching feature enabled (RootCredentialsManagement for the
  IAM task policies, RootSessions for the S3 and SQS ones), only for a
  member account of the caller's organization other than the management
  account, only with one of AWS's five root-task policies, for at most 900 s
  (ValidationError beyond). Refusals are AccessDenied, as STS answers them.
- A root session's credentials act as the member account's root and may
  call only its task policy's IAM actions (AccessDenied otherwise) until
  they expire (ExpiredToken). In it, CreateLoginProfile, GetLoginProfile and
  DeleteLoginProfile without UserName act on root's login profile;
  CreateLoginProfile refuses a Password (the seed: "If you're using
  AssumeRoot, don't specify user name or password") and creates the profile
  that lets root recover its password. ListMFADevices and ListAccessKeys
  without UserName list root's.
  GetLoginProfile names root's profile UserName "root": AWS does not
  document the value, and the operator does not read it.

Where each error code comes from:
- OrganizationNotFoundException, OrganizationNotInAllFeaturesModeException,
  ServiceAccessNotEnabledException, CallerIsNotManagementAccountException,
  AccountNotManagementOrDelegatedAdministratorException: the errors the IAM
  API reference lists for the Organizations root-access calls, with the
  codes AWS's service model (and so aws-sdk-iam) reads on the wire; the
  operator's typed match of them is unit-tested in src/aws/root.rs.
- AccessDenied (STS and IAM), ValidationError (DurationSeconds over 900),
  ExpiredToken: STS's and IAM's common errors.
- NoSuchEntity, EntityAlreadyExists: the login-profile calls' documented
  errors (the IAM API reference), for root's profile as for a user's.
- InvalidInput for a Password in a root session's CreateLoginProfile: our
  model. AWS documents that the call takes none there, not the code of its
  refusal; the operator never sends one (tests/root_access.rs checks the
  emulator refuses it, with the code chosen here).

Test hooks (never part of AWS):
- POST /_lpo/root {"account", "login_profile": bool, "mfa_devices": n,
  "access_keys": n}: root's credentials in ACCOUNT as someone left them in
  the console (a password recovered, an MFA device, access keys).
- GET /_lpo/root?account=A: that state; GET /_lpo/root-calls: every call made
  with root session credentials, in order, with its task policy, so a test
  checks that each call was made in the session of the right one.
LPO_MOTO_UNPATCHED=1 leaves all of this out, as for the other corrections.
"""

from __future__ import annotations

import datetime
import json
import re
import threading

from moto.core.utils import camelcase_to_underscores, utcnow
from moto.iam import models as iam_models
from moto.iam import policy_validation
from moto.iam import responses as iam_responses
from moto.iam.exceptions import IAMException
from moto.organizations import models as org_models
from moto.organizations.models import organizations_backends
from moto.sts.exceptions import STSClientError
from moto.sts.responses import TokenResponse

IAM_PRINCIPAL = "iam.amazonaws.com"
TASK_POLICY_PREFIX = "arn:aws:iam::aws:policy/root-task/"
CREDENTIALS_MANAGEMENT = "RootCredentialsManagement"
ROOT_SESSIONS = "RootSessions"
MAX_ROOT_SESSION_SECONDS = 900

# Each root-task policy's IAM actions (AWS managed policies of that name) and
# the organization feature AssumeRoot needs for it.
_AUDIT = {"GetAccessKeyLastUsed", "GetLoginProfile", "GetUser", "ListAccessKeys",
          "ListMFADevices", "ListSigningCertificates"}
TASK_POLICIES = {
    "IAMAuditRootUserCredentials": (_AUDIT, CREDENTIALS_MANAGEMENT),
    "IAMCreateRootUserPassword": ({"CreateLoginProfile", "GetLoginProfile"}, CREDENTIALS_MANAGEMENT),
    "IAMDeleteRootUserCredentials": (
        _AUDIT | {"DeactivateMFADevice", "DeleteAccessKey", "DeleteLoginProfile",
                  "DeleteSigningCertificate"},
        CREDENTIALS_MANAGEMENT,
    ),
    "S3UnlockBucketPolicy": (set(), ROOT_SESSIONS),
    "SQSUnlockQueuePolicy": (set(), ROOT_SESSIONS),
}

lock = threading.Lock()
# Organization id -> the features enabled in it.
features: dict[str, set[str]] = {}
# Access key id of a root session -> {"account", "task", "expires"}.
sessions: dict[str, dict] = {}
# Account id -> root's credentials: {"login_profile": create date or None,
# "mfa_devices": n, "access_keys": n}.
root_state: dict[str, dict] = {}
# Every call made with root session credentials.
root_calls: list[dict] = []


class RootError(IAMException):
    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


class StsError(STSClientError):
    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


def _state(account_id: str) -> dict:
    return root_state.setdefault(account_id, {"login_profile": None, "mfa_devices": 0, "access_keys": 0})


def _organization_backend(account_id: str):
    """The Organizations backend holding the organization ACCOUNT_ID is in."""
    own = organizations_backends[account_id]["aws"]
    if own.org is not None:
        return own
    member = organizations_backends.master_accounts.get(account_id)
    if member is None:
        return None
    backend = organizations_backends[member[0]][member[1]]
    return backend if backend.org is not None else None


def _is_delegated_iam_admin(backend, account_id: str) -> bool:
    return any(a.account.id == account_id and IAM_PRINCIPAL in a.services for a in backend.admins)


def _managed_organization(caller: str, may_be_delegated: bool):
    backend = _organization_backend(caller)
    if backend is None:
        raise RootError("OrganizationNotFoundException", "The account is not part of an organization.")
    org = backend.org
    if caller != org.master_account_id and not (may_be_delegated and _is_delegated_iam_admin(backend, caller)):
        raise RootError(
            "AccountNotManagementOrDelegatedAdministratorException" if may_be_delegated
            else "CallerIsNotManagementAccountException",
            "The request was not made from the organization's management account"
            + (" or a delegated administrator for IAM." if may_be_delegated else "."),
        )
    if org.feature_set != "ALL":
        raise RootError("OrganizationNotInAllFeaturesModeException",
                        "The organization does not have all features enabled.")
    if not any(s["ServicePrincipal"] == IAM_PRINCIPAL for s in backend.services):
        raise RootError("ServiceAccessNotEnabledException",
                        "Trusted access for IAM is not enabled in the organization.")
    return org


def _features_result(org) -> iam_responses.ActionResult:
    return iam_responses.ActionResult({
        "OrganizationId": org.id,
        "EnabledFeatures": sorted(features.get(org.id, set())),
    })


def _switch(feature: str, on: bool):
    def respond(self):
        org = _managed_organization(self.current_account, may_be_delegated=False)
        with lock:
            enabled = features.setdefault(org.id, set())
            (enabled.add if on else enabled.discard)(feature)
        return _features_result(org)
    return respond


def list_organizations_features(self):
    return _features_result(_managed_organization(self.current_account, may_be_delegated=True))


def assume_root(self):
    caller = self.current_account
    target = self._get_param("TargetPrincipal") or ""
    task_arn = self._get_param("TaskPolicyArn.arn") or self._get_param("TaskPolicyArn.Arn") or ""
    duration = self._get_int_param("DurationSeconds", MAX_ROOT_SESSION_SECONDS)
    if not 0 <= duration <= MAX_ROOT_SESSION_SECONDS:
        raise StsError("ValidationError",
                       f"DurationSeconds {duration} exceeds the root session maximum of {MAX_ROOT_SESSION_SECONDS}")
    task = task_arn[len(TASK_POLICY_PREFIX):] if task_arn.startswith(TASK_POLICY_PREFIX) else None
    if task not in TASK_POLICIES:
        raise StsError("AccessDenied", f"{task_arn} is not a root-task policy AssumeRoot allows")
    match = re.fullmatch(r"(?:arn:aws[a-z-]*:iam::)?([0-9]{12})(?::root)?", target)
    member = match.group(1) if match else None
    backend = _organization_backend(caller)
    denied = StsError("AccessDenied", f"not authorized to perform: sts:AssumeRoot on resource: {target}")
    if backend is None or member is None:
        raise denied
    org = backend.org
    if caller != org.master_account_id and not _is_delegated_iam_admin(backend, caller):
        raise denied
    if member == org.master_account_id or organizations_backends.master_accounts.get(member, (None,))[0] != org.master_account_id:
        raise denied
    if TASK_POLICIES[task][1] not in features.get(org.id, set()):
        raise denied
    iam = iam_models.iam_backends[member]["aws"]
    key = iam.create_temp_access_key()
    expires = utcnow() + datetime.timedelta(seconds=duration)
    with lock:
        sessions[key.access_key_id] = {"account": member, "task": task, "expires": expires}
    return iam_responses.ActionResult({
        "Credentials": {
            "AccessKeyId": key.access_key_id,
            "SecretAccessKey": key.secret_access_key,
            "SessionToken": "FQoGZXIvYXdzE" + key.access_key_id,
            "Expiration": expires,
        },
        "SourceIdentity": f"arn:aws:iam::{member}:root",
    })


def _root_profile(account_id: str) -> dict:
    created = _state(account_id)["login_profile"]
    if created is None:
        raise RootError("NoSuchEntity", "Login Profile for the root user cannot be found.")
    return {"LoginProfile": {"UserName": "root", "CreateDate": created, "PasswordResetRequired": False}}


def _as_root(self, action: str, account: str):
    """The answer to ACTION without UserName in a root session, or None when
    moto's own handler applies."""
    if self._get_param("UserName"):
        return None
    state = _state(account)
    if action == "GetLoginProfile":
        return lambda: iam_responses.ActionResult(_root_profile(account))
    if action == "CreateLoginProfile":
        def create():
            if self._get_param("Password") is not None:
                raise RootError("InvalidInput",
                                "Password must not be specified in an AssumeRoot session: root sets it through password recovery.")
            with lock:
                if state["login_profile"] is not None:
                    raise RootError("EntityAlreadyExists", "Login Profile for the root user already exists.")
                state["login_profile"] = utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
            return iam_responses.ActionResult(_root_profile(account))
        return create
    if action == "DeleteLoginProfile":
        def delete():
            _root_profile(account)
            with lock:
                state["login_profile"] = None
            return iam_responses.EmptyResult()
        return delete
    if action == "ListMFADevices":
        return lambda: iam_responses.ActionResult({
            "MFADevices": [{"UserName": "root", "SerialNumber": f"arn:aws:iam::{account}:mfa/root-{i}",
                            "EnableDate": utcnow()} for i in range(state["mfa_devices"])],
            "IsTruncated": False,
        })
    if action == "ListAccessKeys":
        return lambda: iam_responses.ActionResult({
            "AccessKeyMetadata": [{"UserName": "root", "AccessKeyId": f"AKIAROOT{account}{i:04d}",
                                   "Status": "Active", "CreateDate": utcnow()}
                                  for i in range(state["access_keys"])],
            "IsTruncated": False,
        })
    return None


def _guard(response_class) -> None:
    """Root session credentials: only the task policy's actions, until they
    expire; root's own login profile for calls without UserName."""
    original = response_class.call_action

    def answer(self, action: str, handler):
        setattr(self, camelcase_to_underscores(action), handler)
        return original(self)

    def call_action(self):
        with lock:
            session = sessions.get(self.get_access_key())
        if session is None:
            return original(self)
        action = self._get_action()
        with lock:
            root_calls.append({"account": session["account"], "action": action, "task": session["task"]})
        if utcnow() >= session["expires"]:
            def expired():
                raise RootError("ExpiredToken", "The security token included in the request is expired")
            return answer(self, action, expired)
        if action not in TASK_POLICIES[session["task"]][0]:
            def denied():
                raise RootError(
                    "AccessDenied",
                    f"arn:aws:iam::{session['account']}:root is not authorized to perform: iam:{action} "
                    f"(the session's task policy is {session['task']})",
                )
            return answer(self, action, denied)
        handler = _as_root(self, action, session["account"])
        return answer(self, action, handler) if handler else original(self)

    response_class.call_action = call_action


def hook(request) -> str | None:
    """The /_lpo/root* test hooks; the JSON body of the answer, or None."""
    if request.path == "/_lpo/root" and request.method == "POST":
        asked = json.loads(request.get_data())
        with lock:
            state = _state(str(asked["account"]))
            if "login_profile" in asked:
                state["login_profile"] = (
                    utcnow().strftime("%Y-%m-%dT%H:%M:%SZ") if asked["login_profile"] else None
                )
            for count in ("mfa_devices", "access_keys"):
                if count in asked:
                    state[count] = int(asked[count])
            return json.dumps(state)
    if request.path == "/_lpo/root" and request.method == "GET":
        with lock:
            return json.dumps(_state(request.args.get("account", "")))
    if request.path == "/_lpo/root-calls" and request.method == "GET":
        with lock:
            return json.dumps({"calls": list(root_calls)})
    return None


def apply_corrections() -> None:
    # IAM accepts the account's root as a policy resource (AssumeRoot's:
    # "arn:aws:iam::ACCOUNT:root"); moto's policy validator knew only
    # resource paths such as user/ and role/.
    policy_validation.VALID_RESOURCE_PATH_STARTING_VALUES["iam"]["values"].append("root")
    org_models.FakeServiceAccess.TRUSTED_SERVICES.append(IAM_PRINCIPAL)
    org_models.FakeDelegatedAdministrator.SUPPORTED_SERVICES.append(IAM_PRINCIPAL)
    IAMResponse = iam_responses.IamResponse
    IAMResponse.enable_organizations_root_credentials_management = _switch(CREDENTIALS_MANAGEMENT, True)
    IAMResponse.disable_organizations_root_credentials_management = _switch(CREDENTIALS_MANAGEMENT, False)
    IAMResponse.enable_organizations_root_sessions = _switch(ROOT_SESSIONS, True)
    IAMResponse.disable_organizations_root_sessions = _switch(ROOT_SESSIONS, False)
    IAMResponse.list_organizations_features = list_organizations_features
    TokenResponse.assume_root = assume_root
    _guard(IAMResponse)

