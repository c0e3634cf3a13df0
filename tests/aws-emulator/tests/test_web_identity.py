"""STS AssumeRoleWithWebIdentity: tokens are verified like AWS STS verifies them.

A tiny OIDC issuer runs on 127.0.0.1 in this process (discovery document +
JWKS); tokens are signed with joserfc using RSA / EC keys made with
`cryptography`; the IAM OIDC provider and roles are created through boto3.
"""

from __future__ import annotations

import http.server
import itertools
import json
import threading
import time
from typing import Any

import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from conftest import EXTERNAL_ID, Admin, client, start_emulator, stop_emulator

CLIENT_ID = "berth"
_accounts = itertools.count(210000000001)


def _pem(private_key: Any) -> bytes:
    return private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())


def rsa_key(kid: str) -> RSAKey:
    return RSAKey.import_key(_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)), {"kid": kid})


def ec_key(kid: str, curve: ec.EllipticCurve | None = None) -> ECKey:
    return ECKey.import_key(_pem(ec.generate_private_key(curve or ec.SECP256R1())), {"kid": kid})


class Issuer:
    """An OIDC issuer on 127.0.0.1: `/.well-known/openid-configuration` and `/jwks`
    (the keys in `published`), counting JWKS fetches."""

    def __init__(self) -> None:
        self.published: list[Any] = []
        self.jwks_fetches = 0
        self.discovery_override: Any = None
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path == "/.well-known/openid-configuration":
                    doc = issuer.discovery_override or {"issuer": issuer.url, "jwks_uri": issuer.url + "/jwks"}
                    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
                elif self.path == "/jwks":
                    issuer.jwks_fetches += 1
                    body = json.dumps({"keys": [k.as_dict(private=False) for k in issuer.published]}).encode()
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.host = self.url[len("http://"):]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def token(self, key: Any, alg: str = "RS256", header: dict[str, Any] | None = None, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.url, "sub": "tenant-1", "aud": CLIENT_ID, "iat": now, "exp": now + 300, **claims}
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode({"alg": alg, "kid": key.kid, **(header or {})}, body, key, algorithms=[alg])


@pytest.fixture
def issuer():
    iss = Issuer()
    iss.published.append(rsa_key("rsa-1"))
    try:
        yield iss
    finally:
        iss.stop()


def in_account(endpoint: str, service: str, account: str):
    """A client whose calls count as `account` (moto's x-moto-account-id header)."""
    c = client(endpoint, service)
    c.meta.events.register("before-sign", lambda request, **_: request.headers.__setitem__("x-moto-account-id", account))
    return c


def make_provider(endpoint: str, account: str, url: str, client_ids: list[str] | None = None) -> str:
    return in_account(endpoint, "iam", account).create_open_id_connect_provider(
        Url=url, ClientIDList=client_ids or [CLIENT_ID], ThumbprintList=[])["OpenIDConnectProviderArn"]


def make_role(endpoint: str, account: str, name: str, statements: list[dict[str, Any]]) -> str:
    doc = {"Version": "2012-10-17", "Statement": statements}
    return in_account(endpoint, "iam", account).create_role(
        RoleName=name, AssumeRolePolicyDocument=json.dumps(doc))["Role"]["Arn"]


def allow(provider_arn: str, conditions: dict[str, Any] | None = None, effect: str = "Allow") -> dict[str, Any]:
    st: dict[str, Any] = {"Effect": effect, "Principal": {"Federated": provider_arn},
                          "Action": "sts:AssumeRoleWithWebIdentity"}
    if conditions:
        st["Condition"] = conditions
    return st


def sts_anon(endpoint: str):
    return client(endpoint, "sts", config=Config(signature_version=UNSIGNED, retries={"total_max_attempts": 1}))


def assume(endpoint: str, role_arn: str, token: str, session: str = "berth-oidc") -> dict[str, Any]:
    return sts_anon(endpoint).assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName=session,
                                                            WebIdentityToken=token, DurationSeconds=900)


def refused(endpoint: str, role_arn: str, token: str) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as e:
        assume(endpoint, role_arn, token)
    r = e.value.response
    assert token not in r["Error"]["Message"]
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Message"]


@pytest.fixture
def setup(emulator, issuer):
    """A provider for `issuer` in a fresh account and a role there that trusts it for sub tenant-1."""
    account = str(next(_accounts))
    provider = make_provider(emulator, account, issuer.url)
    role = make_role(emulator, account, "BerthTenant", [allow(provider, {"StringEquals": {
        f"{issuer.host}:sub": "tenant-1", f"{issuer.host}:aud": CLIENT_ID}})])
    return {"account": account, "provider": provider, "role": role}


def test_good_tokens_give_the_roles_credentials(emulator, admin, issuer, setup):
    assert setup["provider"] == f"arn:aws:iam::{setup['account']}:oidc-provider/{issuer.host}"
    before = admin.get("/_berth/stats")["web_identity"]["accepted"]
    out = assume(emulator, setup["role"], issuer.token(issuer.published[0]))
    assert out["SubjectFromWebIdentityToken"] == "tenant-1"
    assert out["Audience"] == CLIENT_ID and out["Provider"] == issuer.url
    creds = out["Credentials"]
    me = client(emulator, "sts", creds=creds).get_caller_identity()
    assert me["Account"] == setup["account"]
    assert me["Arn"] == f"arn:aws:sts::{setup['account']}:assumed-role/BerthTenant/berth-oidc"
    assert me["UserId"] == out["AssumedRoleUser"]["AssumedRoleId"]
    assert out["AssumedRoleUser"]["Arn"] == me["Arn"]
    # the credentials act in the role's account
    assert any(r["Arn"] == setup["role"] for r in client(emulator, "iam", creds=creds).list_roles()["Roles"])
    # EC keys (ES256 / ES384), an aud list naming the client id among others
    issuer.published += [ec_key("ec-1"), ec_key("ec-2", ec.SECP384R1())]
    admin.post("/_berth/config", {"sts": {"jwks_cache_seconds": 0}})
    assume(emulator, setup["role"], issuer.token(issuer.published[1], "ES256", aud=["other", CLIENT_ID]))
    assume(emulator, setup["role"], issuer.token(issuer.published[2], "ES384"))
    assert admin.get("/_berth/stats")["web_identity"]["accepted"] == before + 3


def test_issued_sessions_expire(emulator, admin, issuer, setup):
    admin.post("/_berth/config", {"sts": {"session_seconds": 2}})
    creds = assume(emulator, setup["role"], issuer.token(issuer.published[0]))["Credentials"]
    assert 0 < creds["Expiration"].timestamp() - time.time() <= 2.5
    sts = client(emulator, "sts", creds=creds)
    sts.get_caller_identity()
    time.sleep(max(0.0, creds["Expiration"].timestamp() - time.time()) + 0.2)
    with pytest.raises(ClientError) as e:
        sts.get_caller_identity()
    assert e.value.response["Error"]["Code"] == "ExpiredToken"


def test_trust_policy_conditions(emulator, issuer, setup):
    key = issuer.published[0]
    code, status, msg = refused(emulator, setup["role"], issuer.token(key, sub="tenant-2"))
    assert (code, status) == ("AccessDenied", 403)
    assert msg == "Not authorized to perform sts:AssumeRoleWithWebIdentity"
    acct, host, provider = setup["account"], issuer.host, setup["provider"]
    like = make_role(emulator, acct, "BerthLike", [
        allow(provider, {"StringLike": {f"{host.upper()}:SUB": "tenant-*"}}),  # key names are case-insensitive
        allow(provider, {"StringEquals": {f"{host}:sub": "tenant-banned"}}, effect="Deny"),
    ])
    assume(emulator, like, issuer.token(key, sub="tenant-7"))
    assert refused(emulator, like, issuer.token(key, sub="other-7"))[0] == "AccessDenied"
    assert refused(emulator, like, issuer.token(key, sub="tenant-banned"))[0] == "AccessDenied"  # Deny wins
    negated = make_role(emulator, acct, "BerthNotLike", [allow(provider, {
        "StringNotLikeIfExists": {f"{host}:sub": "evil-*"}, "StringNotEquals": {f"{host}:aud": "nobody"}})])
    assume(emulator, negated, issuer.token(key, sub="fine"))
    assert refused(emulator, negated, issuer.token(key, sub="evil-1"))[0] == "AccessDenied"
    # an operator the emulator does not model never grants on sub / aud; amr is absent
    unknown = make_role(emulator, acct, "BerthUnknownOp", [allow(provider, {"NumericEquals": {f"{host}:sub": "1"}})])
    assert refused(emulator, unknown, issuer.token(key))[0] == "AccessDenied"
    amr = make_role(emulator, acct, "BerthAmr", [allow(provider, {"StringEquals": {f"{host}:amr": "authenticated"}})])
    assert refused(emulator, amr, issuer.token(key))[0] == "AccessDenied"
    # a Federated principal naming another provider, or an AWS principal, does not match
    other = Issuer()
    try:
        other_provider = make_provider(emulator, acct, other.url)
    finally:
        other.stop()
    for name, principal in (("BerthOtherIdp", {"Federated": other_provider}), ("BerthAwsOnly", {"AWS": "*"})):
        arn = make_role(emulator, acct, name, [{"Effect": "Allow", "Principal": principal,
                                                "Action": "sts:AssumeRoleWithWebIdentity"}])
        assert refused(emulator, arn, issuer.token(key))[:2] == ("AccessDenied", 403)
    # the action must be the web-identity one
    plain = make_role(emulator, acct, "BerthPlainAssume", [{**allow(provider), "Action": "sts:AssumeRole"}])
    assert refused(emulator, plain, issuer.token(key))[0] == "AccessDenied"


def test_claims(emulator, issuer, setup):
    key, role, now = issuer.published[0], setup["role"], int(time.time())
    code, status, msg = refused(emulator, role, issuer.token(key, aud="someone-else"))
    assert (code, status) == ("InvalidIdentityToken", 400) and "aud" in msg
    assert refused(emulator, role, issuer.token(key, aud=None))[0] == "InvalidIdentityToken"
    code, status, msg = refused(emulator, role, issuer.token(key, exp=now - 10))
    assert (code, status) == ("ExpiredTokenException", 400) and "expir" in msg
    assert refused(emulator, role, issuer.token(key, exp=None))[0] == "InvalidIdentityToken"
    for claim in ("nbf", "iat"):
        code, _, msg = refused(emulator, role, issuer.token(key, **{claim: now + 120}))
        assert code == "InvalidIdentityToken" and claim in msg
    assume(emulator, role, issuer.token(key, nbf=now + 2, iat=now + 2))  # within the 5 s skew
    assert refused(emulator, role, issuer.token(key, sub=None))[0] == "InvalidIdentityToken"


def test_signatures_and_structure(emulator, issuer, setup):
    published, role = issuer.published[0], setup["role"]
    # same kid, but a key the issuer never published
    code, status, msg = refused(emulator, role, issuer.token(rsa_key(published.kid)))
    assert (code, status) == ("InvalidIdentityToken", 400) and "signature" in msg.lower()
    good = issuer.token(published)
    head, payload, sig = good.split(".")
    tampered = issuer.token(published, sub="tenant-2").split(".")[1]
    assert refused(emulator, role, f"{head}.{tampered}.{sig}")[0] == "InvalidIdentityToken"
    # an RSA key cannot verify an ES256 token claiming its kid
    lying = issuer.token(ec_key(published.kid), "ES256")
    assert refused(emulator, role, lying)[0] == "InvalidIdentityToken"
    code, _, msg = refused(emulator, role, issuer.token(rsa_key("never-published")))
    assert code == "InvalidIdentityToken" and "never-published" in msg
    for bad in ("not-a-jwt", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJiZXJ0aCJ9.c2ln", f"{head}.{payload}"):
        assert refused(emulator, role, bad)[:2] == ("InvalidIdentityToken", 400)
    code, _, msg = refused(emulator, role, jwt.encode({"alg": "HS256", "kid": "h"}, {"iss": issuer.url},
                                                      OctKey.import_key("s" * 32), algorithms=["HS256"]))
    assert code == "InvalidIdentityToken" and "HS256" in msg
    no_kid = jwt.encode({"alg": "RS256"}, {"iss": issuer.url, "sub": "x", "aud": CLIENT_ID,
                                           "exp": int(time.time()) + 60}, published, algorithms=["RS256"])
    code, _, msg = refused(emulator, role, no_kid)
    assert code == "InvalidIdentityToken" and "kid" in msg


def test_unknown_kid_is_refused_until_the_cache_expires(emulator, admin, issuer, setup):
    admin.post("/_berth/config", {"sts": {"jwks_cache_seconds": 2}})
    assert admin.get("/_berth/config")["sts"]["jwks_cache_seconds"] == 2
    assume(emulator, setup["role"], issuer.token(issuer.published[0]))
    assert issuer.jwks_fetches == 1
    rotated = rsa_key("rsa-2")
    t0 = time.monotonic()
    assert refused(emulator, setup["role"], issuer.token(rotated))[0] == "InvalidIdentityToken"
    issuer.published.append(rotated)  # published now, but the emulator's copy is still fresh
    code, _, msg = refused(emulator, setup["role"], issuer.token(rotated))
    assert code == "InvalidIdentityToken" and "rsa-2" in msg
    assert issuer.jwks_fetches == 1
    time.sleep(max(0.0, 2.1 - (time.monotonic() - t0)))
    assume(emulator, setup["role"], issuer.token(rotated))
    assert issuer.jwks_fetches == 2
    status, body = admin.call("POST", "/_berth/config", {"sts": {"jwks_cache_seconds": -1}})
    assert status == 400 and "jwks_cache_seconds" in body["error"]


def test_provider_must_be_in_the_roles_account(emulator, issuer):
    role_account, other_account = str(next(_accounts)), str(next(_accounts))
    provider = make_provider(emulator, other_account, issuer.url)
    role = make_role(emulator, role_account, "BerthTenant", [allow(provider)])
    code, status, msg = refused(emulator, role, issuer.token(issuer.published[0]))
    assert (code, status) == ("InvalidIdentityToken", 400)
    assert role_account in msg and issuer.url in msg


def test_role_must_exist(emulator, issuer, setup):
    missing = f"arn:aws:iam::{setup['account']}:role/NoSuchRole"
    assert refused(emulator, missing, issuer.token(issuer.published[0]))[:2] == ("AccessDenied", 403)


def test_identity_provider_unreachable_or_invalid(emulator, admin, issuer, setup):
    admin.post("/_berth/config", {"sts": {"jwks_cache_seconds": 0}})
    token = issuer.token(issuer.published[0])
    for doc in ({"issuer": issuer.url}, {"jwks_uri": "http://203.0.113.7/jwks"}, {"jwks_uri": "http://localhost:1/jwks"},
                b"not json"):
        issuer.discovery_override = doc
        assert refused(emulator, setup["role"], token)[:2] == ("IDPCommunicationError", 400), doc
    issuer.discovery_override = None
    assume(emulator, setup["role"], token)
    issuer.stop()
    code, status, msg = refused(emulator, setup["role"], token)
    assert (code, status) == ("IDPCommunicationError", 400) and issuer.url in msg
    refusals = admin.get("/_berth/stats")["web_identity"]["refused"]
    assert refusals["idp_unreachable"] >= 1 and refusals["idp_invalid"] >= 3


def test_provider_urls_need_https_except_on_loopback(emulator):
    iam = in_account(emulator, "iam", str(next(_accounts)))
    for url in ("http://example.com", "http://10.0.0.1:8080", "http://127.0.0.1.example.com", "ftp://127.0.0.1"):
        with pytest.raises(ClientError) as e:
            iam.create_open_id_connect_provider(Url=url, ClientIDList=[CLIENT_ID], ThumbprintList=[])
        assert e.value.response["Error"]["Code"] == "InvalidInput", url
        assert "https://" in e.value.response["Error"]["Message"]
    for url, arn_tail in (("https://issuer.example.com/tenant", "issuer.example.com/tenant"),
                          ("http://127.0.0.1:4000", "127.0.0.1:4000"), ("http://localhost:4000", "localhost:4000"),
                          ("http://[::1]:4000", "[::1]:4000")):
        arn = iam.create_open_id_connect_provider(Url=url, ClientIDList=[CLIENT_ID],
                                                  ThumbprintList=[])["OpenIDConnectProviderArn"]
        assert arn.endswith(f":oidc-provider/{arn_tail}")
    assert len(iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]) == 4


def test_web_identity_then_chain(emulator, issuer, seeded):
    """web identity -> org role (management account) -> member read role (ExternalId)."""
    mgmt = seeded["management_account"]
    provider = make_provider(emulator, mgmt, issuer.url)
    role = make_role(emulator, mgmt, f"BerthWebIdentity{issuer.server.server_port}", [
        allow(provider, {"StringEquals": {f"{issuer.host}:aud": CLIENT_ID}})])
    creds = assume(emulator, role, issuer.token(issuer.published[0]))["Credentials"]
    assert creds["AccessKeyId"] and creds["SessionToken"] and creds["Expiration"]
    me = client(emulator, "sts", creds=creds).get_caller_identity()
    assert me["Account"] == mgmt and me["Arn"].endswith(f":assumed-role/{role.split('/')[-1]}/berth-oidc")
    org_creds = client(emulator, "sts", creds=creds).assume_role(
        RoleArn=seeded["organization"]["org_role_arn"], RoleSessionName="berth-org")["Credentials"]
    assert len(client(emulator, "organizations", creds=org_creds).list_accounts()["Accounts"]) == 4
    a = seeded["accounts"][2]
    member = client(emulator, "sts", creds=org_creds).assume_role(
        RoleArn=a["read_role_arn"], RoleSessionName="berth-member", ExternalId=EXTERNAL_ID)["Credentials"]
    cc = client(emulator, "cloudcontrol", "eu-west-1", creds=member)
    got = sorted(d["Identifier"] for d in cc.list_resources(TypeName="AWS::RDS::DBInstance")["ResourceDescriptions"])
    assert got == seeded["identifiers"][a["id"]]["eu-west-1"]["AWS::RDS::DBInstance"]


def test_reset_clears_the_jwks_cache(issuer):
    proc, endpoint = start_emulator()
    try:
        adm = Admin(endpoint)

        def prepare() -> str:
            provider = make_provider(endpoint, "123456789012", issuer.url)
            return make_role(endpoint, "123456789012", "BerthTenant", [allow(provider)])

        role = prepare()
        assume(endpoint, role, issuer.token(issuer.published[0]))
        rotated = rsa_key("rsa-2")
        issuer.published = [rotated]
        assert refused(endpoint, role, issuer.token(rotated))[0] == "InvalidIdentityToken"  # cached for 300 s
        stats = adm.get("/_berth/stats")["web_identity"]
        assert stats["refused"] == {"unknown_kid": 1} and stats["issuers_cached"] == 1
        assert adm.post("/_berth/reset", {}) == {"reset": True}
        assert adm.get("/_berth/stats")["web_identity"]["issuers_cached"] == 0
        role = prepare()
        assume(endpoint, role, issuer.token(rotated))
        assert issuer.jwks_fetches == 2
    finally:
        assert stop_emulator(proc) == 0
