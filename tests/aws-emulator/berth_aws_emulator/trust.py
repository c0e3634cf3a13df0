"""STS trust-policy evaluation (moto itself accepts any role ARN).

AssumeRole: when the target role exists in moto's IAM (in the role's
account), its trust policy is evaluated for the caller: principal (account
root / account id / role or user ARN / "*"), `sts:AssumeRole` action, and the
conditions `sts:ExternalId`, `sts:RoleSessionName`, `aws:PrincipalAccount`
(StringEquals / StringLike / StringNotEquals / StringNotLike). Explicit Deny
wins. Roles that do not exist are allowed (moto's behaviour) unless
`require_existing_role` is set.

AssumeRoleWithWebIdentity (`check_web_identity_trust`, called by
`webidentity` once the token is verified): the same evaluation with a
`Federated` principal (the OIDC provider ARN) and the `<issuer>:sub` /
`<issuer>:aud` / `<issuer>:amr` condition keys, which are always evaluated.
"""

from __future__ import annotations

import fnmatch
import json
import threading
from typing import Any, Callable
from urllib.parse import unquote

from .identity import RequestInfo


class TrustConfig:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.enforce = True
        self.require_existing_role = False

    def update(self, cfg: dict[str, Any]) -> None:
        with self.lock:
            if "enforce" in cfg:
                self.enforce = bool(cfg["enforce"])
            if "require_existing_role" in cfg:
                self.require_existing_role = bool(cfg["require_existing_role"])

    def describe(self) -> dict[str, Any]:
        return {"enforce": self.enforce, "require_existing_role": self.require_existing_role}


def _arn_account(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[0] == "arn" else None


def _find_role(role_arn: str):
    from moto.iam.models import iam_backends
    from moto.utilities.utils import get_partition

    acct = _arn_account(role_arn)
    if not acct:
        return None
    partition = role_arn.split(":")[1]
    try:
        backend = iam_backends[acct][partition if partition != "aws" else "aws"]
    except Exception:
        try:
            backend = iam_backends[acct][get_partition(partition)]
        except Exception:
            return None
    for role in list(backend.roles.values()):
        if role.arn == role_arn:
            return role
    return None


def caller_identity(info: RequestInfo) -> dict[str, str | None]:
    """{account, arn, role_arn} of the caller, as far as moto knows it."""
    from moto.iam.models import iam_backends

    out: dict[str, str | None] = {"account": info.account, "arn": None, "role_arn": None}
    key = info.access_key
    if not key:
        return out
    try:
        for partition in ("aws", "aws-cn", "aws-us-gov", "aws-eusc", "aws-iso", "aws-iso-b"):
            backend = iam_backends[info.account][partition]
            ak = backend.access_keys.get(key)
            if ak is not None:
                role_arn = getattr(ak, "role_arn", None)
                out["role_arn"] = role_arn
                if role_arn:
                    out["arn"] = role_arn
                else:
                    user = getattr(ak, "user_name", None)
                    out["arn"] = f"arn:{partition}:iam::{info.account}:user/{user}" if user else None
                break
    except Exception:
        pass
    if out["arn"] is None:
        out["arn"] = f"arn:aws:iam::{info.account}:user/moto"
    return out


def _as_list(v: Any) -> list[Any]:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def _principal_matches(principal: Any, caller: dict[str, str | None]) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    for p in _as_list(principal.get("AWS")):
        p = str(p)
        if p == "*":
            return True
        if p == caller["account"]:
            return True
        if p.endswith(":root") and _arn_account(p) == caller["account"]:
            return True
        if caller["role_arn"] and p == caller["role_arn"]:
            return True
        if caller["arn"] and p == caller["arn"]:
            return True
    return False


def _action_matches(action: Any, wanted: str) -> bool:
    return any(fnmatch.fnmatchcase(wanted.lower(), str(a).lower()) for a in _as_list(action))


def _conditions_hold(cond: Any, context: dict[str, str | None], required: frozenset[str] = frozenset()) -> bool:
    """True when every condition holds. Keys not in `context` are not modelled
    and count as satisfied; keys in `required` (lower case) are always
    evaluated, so an operator the emulator does not know fails them."""
    if not cond:
        return True
    if not isinstance(cond, dict):
        return False
    for op, clauses in cond.items():
        if not isinstance(clauses, dict):
            return False
        # single-valued keys: ForAnyValue behaves like the plain operator, ForAllValues too
        # except that an absent key satisfies it
        qualifier, _, bare = op.rpartition(":")
        base = bare.replace("IfExists", "")
        for key, expected in clauses.items():
            k = key.lower()
            if k not in context:
                continue  # keys the emulator does not model are treated as satisfied
            actual = context[k]
            values = [str(e) for e in _as_list(expected)]
            if actual is None:
                if bare.endswith("IfExists") or base.startswith("StringNot") or qualifier == "ForAllValues":
                    continue
                return False
            if base == "StringEquals":
                ok = actual in values
            elif base == "StringEqualsIgnoreCase":
                ok = actual.lower() in [v.lower() for v in values]
            elif base == "StringLike":
                ok = any(fnmatch.fnmatchcase(actual, v) for v in values)
            elif base == "StringNotEquals":
                ok = actual not in values
            elif base == "StringNotLike":
                ok = not any(fnmatch.fnmatchcase(actual, v) for v in values)
            elif k in required:
                ok = False  # an operator the emulator cannot evaluate never grants on a required key
            else:
                continue
            if not ok:
                return False
    return True


def _role_policy(role: Any) -> dict[str, Any] | None:
    """The role's trust policy as a dict (moto may keep it URL-encoded), or None if unreadable."""
    doc = role.assume_role_policy_document
    try:
        policy = json.loads(doc) if isinstance(doc, str) else doc
    except ValueError:
        try:
            policy = json.loads(unquote(doc))
        except ValueError:
            return None
    return policy if isinstance(policy, dict) else None


def _evaluate(policy: dict[str, Any], action: str, principal_ok: Callable[[Any], bool],
              context: dict[str, str | None], required: frozenset[str] = frozenset()) -> bool:
    """True when some statement allows and none denies (explicit Deny wins)."""
    allowed = False
    for st in _as_list(policy.get("Statement")):
        if not isinstance(st, dict):
            continue
        if not _action_matches(st.get("Action"), action):
            continue
        if not principal_ok(st.get("Principal")):
            continue
        if not _conditions_hold(st.get("Condition"), context, required):
            continue
        if st.get("Effect") == "Deny":
            return False
        if st.get("Effect") == "Allow":
            allowed = True
    return allowed


def check_assume_role(info: RequestInfo, cfg: TrustConfig) -> str | None:
    """Returns an AccessDenied message, or None when the call may proceed."""
    if not cfg.enforce:
        return None
    params = dict(info.params)
    if info.protocol == "json":
        params.update(info.json_body())
    role_arn = params.get("RoleArn")
    if not role_arn:
        return None
    caller = caller_identity(info)
    denied = f"User: {caller['arn']} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
    role = _find_role(role_arn)
    if role is None:
        return denied if cfg.require_existing_role else None
    policy = _role_policy(role)
    if policy is None:
        return denied
    context = {
        "sts:externalid": params.get("ExternalId"),
        "sts:rolesessionname": params.get("RoleSessionName"),
        "aws:principalaccount": caller["account"],
    }
    ok = _evaluate(policy, "sts:AssumeRole", lambda p: _principal_matches(p, caller), context)
    return None if ok else denied


WEB_IDENTITY_DENIED = "Not authorized to perform sts:AssumeRoleWithWebIdentity"


def _federated_matches(principal: Any, provider_arn: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    return any(str(p) == provider_arn for p in _as_list(principal.get("Federated")))


def check_web_identity_trust(role: Any, provider_arn: str, issuer_key: str, subject: str, audience: str,
                             session_name: str | None) -> str | None:
    """AccessDenied message, or None when the role's trust policy lets this verified
    token in. `issuer_key` is the issuer URL without its scheme (the condition-key
    prefix, e.g. `127.0.0.1:41234`); `audience` is the aud value that matched a
    client id of the provider."""
    policy = _role_policy(role)
    if policy is None:
        return WEB_IDENTITY_DENIED
    prefix = issuer_key.lower()
    context: dict[str, str | None] = {
        f"{prefix}:sub": subject,
        f"{prefix}:aud": audience,
        f"{prefix}:amr": None,
        "sts:rolesessionname": session_name,
    }
    required = frozenset({f"{prefix}:sub", f"{prefix}:aud"})
    ok = _evaluate(policy, "sts:AssumeRoleWithWebIdentity", lambda p: _federated_matches(p, provider_arn),
                   context, required)
    return None if ok else WEB_IDENTITY_DENIED


# --------------------------------------------------------------------------- session expiry

import re as _re
import time as _time
from datetime import datetime as _dt, timezone as _tz

CREDENTIAL_ACTIONS = {"AssumeRole", "AssumeRoleWithWebIdentity", "AssumeRoleWithSAML", "GetSessionToken", "GetFederationToken"}


class Sessions:
    """Remembers when STS-issued credentials expire and rejects them afterwards
    (moto accepts expired credentials forever). `session_seconds` shortens every
    issued session, so credential refresh can be tested in seconds."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.expiry: dict[str, float] = {}
        self.reset()

    def reset(self) -> None:
        self.session_seconds: float | None = None
        self.reject_expired = True

    def update(self, cfg: dict[str, Any]) -> None:
        with self.lock:
            if "session_seconds" in cfg:
                v = cfg["session_seconds"]
                if v is not None and float(v) <= 0:
                    raise ValueError("session_seconds must be > 0 or null")
                self.session_seconds = None if v is None else float(v)
            if "reject_expired" in cfg:
                self.reject_expired = bool(cfg["reject_expired"])

    def describe(self) -> dict[str, Any]:
        return {"session_seconds": self.session_seconds, "reject_expired": self.reject_expired,
                "sessions_tracked": len(self.expiry)}

    def expired(self, access_key: str | None) -> bool:
        if not access_key or not self.reject_expired:
            return False
        exp = self.expiry.get(access_key)
        return exp is not None and _time.time() >= exp

    def issued(self, body: bytes) -> bytes:
        """Records (and, with session_seconds, shortens) the credentials in an STS answer."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return body
        key = _re.search(r"<AccessKeyId>([^<]+)</AccessKeyId>", text)
        exp = _re.search(r"<Expiration>([^<]+)</Expiration>", text)
        if not key or not exp:
            return body
        try:
            when = _dt.fromisoformat(exp.group(1).replace("Z", "+00:00")).timestamp()
        except ValueError:
            return body
        if self.session_seconds is not None:
            when = _time.time() + self.session_seconds
            iso = _dt.fromtimestamp(when, _tz.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            text = text[:exp.start(1)] + iso + text[exp.end(1):]
        with self.lock:
            self.expiry[key.group(1)] = when
        return text.encode("utf-8")
