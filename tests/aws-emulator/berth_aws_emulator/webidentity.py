"""STS AssumeRoleWithWebIdentity token verification (moto accepts any string).

Before moto issues credentials, the token is checked the way AWS STS checks
it, so Berth's OIDC issuer is exercised for real:

1. a compact JWS with `alg` RS256/384/512 or ES256/384/512 and a `kid`;
2. an IAM OIDC provider for its `iss` exists **in the role's account**
   (moto's `open_id_providers`, matched on the URL without its scheme);
3. the signature verifies with the `kid` key of the issuer's JWKS
   (`<iss>/.well-known/openid-configuration` -> `jwks_uri`), fetched only
   from loopback hosts and cached per issuer for `jwks_cache_seconds`; a
   `kid` missing from the cached set is refused, not refetched, until the
   cache expires (proves the issuer publishes a key before signing with it);
4. `exp` in the future, `nbf` / `iat` not in the future (5 s skew), `sub`
   present, `aud` (string or list) naming one of the provider's client ids;
5. the role exists and its trust policy allows the provider's `Federated`
   principal with the `<issuer>:sub` / `:aud` conditions (`trust.py`).

Refusals answer as STS does: InvalidIdentityToken / ExpiredTokenException /
IDPCommunicationError (400), AccessDenied (403); they are counted by reason.
Plain-http issuers are accepted only on loopback hosts (`provider_url_problem`
also guards IAM CreateOpenIDConnectProvider).
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse
from xml.sax.saxutils import escape

from . import trust
from .identity import RequestInfo

ALGORITHMS = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512")
SKEW_SECONDS = 5
FETCH_TIMEOUT_SECONDS = 5.0
MAX_DOCUMENT_BYTES = 1 << 20
DEFAULT_JWKS_CACHE_SECONDS = 300.0

INVALID = ("InvalidIdentityToken", 400)
EXPIRED = ("ExpiredTokenException", 400)
IDP_ERROR = ("IDPCommunicationError", 400)
DENIED = ("AccessDenied", 403)
VALIDATION = ("ValidationError", 400)


class Refused(Exception):
    """A web-identity call STS would refuse: error code, HTTP status, message, and
    a short reason used as the stats counter name."""

    def __init__(self, kind: tuple[str, int], reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.status = kind
        self.reason = reason
        self.message = message


def is_loopback_host(host: str | None) -> bool:
    """127.0.0.0/8, ::1 or `localhost` — literally, no DNS (a name that merely
    resolves to loopback is not trusted with plain http)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def provider_url_problem(url: str) -> str | None:
    """Why IAM would refuse this OIDC provider URL, or None. Real IAM wants https;
    the emulator also takes plain http for loopback hosts (local test issuers).
    URLs without any scheme are left to moto's own validation."""
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    if not scheme or not parsed.netloc:
        return None
    if scheme == "https":
        return None
    if scheme == "http" and is_loopback_host(parsed.hostname):
        return None
    return ("The URL must begin with https:// (the emulator accepts http:// only for the loopback hosts "
            "127.0.0.1, ::1 and localhost)")


def _strip_scheme(url: str) -> str:
    for prefix in ("https://", "http://"):
        if url.lower().startswith(prefix):
            return url[len(prefix):]
    return url


def _find_provider(account: str, partition: str, issuer: str) -> Any | None:
    """The IAM OIDC provider of `account` whose URL (moto keeps it without the
    scheme) is the issuer's."""
    from moto.iam.models import iam_backends

    wanted = _strip_scheme(issuer).rstrip("/")
    try:
        backend = iam_backends[account][partition]
    except Exception:
        return None
    for provider in list(backend.open_id_providers.values()):
        if str(provider.url).rstrip("/") == wanted:
            return provider
    return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects could leave loopback; STS-style verification refuses them."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        raise urllib.error.HTTPError(req.full_url, code, f"redirect to {newurl} refused", headers, fp)


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def _fetch_json(url: str, what: str) -> dict[str, Any]:
    """GETs a JSON object from a loopback URL (no proxies, no redirects)."""
    try:
        with _OPENER.open(urllib.request.Request(url, headers={"Accept": "application/json"}),
                          timeout=FETCH_TIMEOUT_SECONDS) as r:
            raw = r.read(MAX_DOCUMENT_BYTES + 1)
    except urllib.error.HTTPError as e:
        raise Refused(IDP_ERROR, "idp_unreachable", f"Couldn't retrieve the {what} from {url}: HTTP {e.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise Refused(IDP_ERROR, "idp_unreachable", f"Couldn't retrieve the {what} from {url}: {reason}") from None
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise Refused(IDP_ERROR, "idp_invalid", f"The {what} at {url} is larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise Refused(IDP_ERROR, "idp_invalid", f"The {what} at {url} is not JSON") from None
    if not isinstance(doc, dict):
        raise Refused(IDP_ERROR, "idp_invalid", f"The {what} at {url} is not a JSON object")
    return doc


@dataclass
class _Jwks:
    keys: dict[str, list[Any]]  # kid -> imported keys (joserfc) or a string saying why it did not import
    fetched: float  # time.monotonic()
    uri: str


@dataclass
class Grant:
    """A verified call: what the STS answer says about the token."""

    issuer: str
    provider_arn: str
    subject: str
    audience: str
    role_id: str
    session_name: str

    def decorate(self, body: bytes) -> bytes:
        """Adds SubjectFromWebIdentityToken / Provider / Audience to moto's answer and
        makes AssumedRoleId the one GetCallerIdentity reports (role id:session)."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return body
        end = "</AssumeRoleWithWebIdentityResult>"
        if end not in text:
            return body
        start, stop = text.find("<AssumedRoleId>"), text.find("</AssumedRoleId>")
        if 0 <= start < stop:
            text = text[:start] + f"<AssumedRoleId>{escape(self.role_id)}:{escape(self.session_name)}" + text[stop:]
        extra = (f"<SubjectFromWebIdentityToken>{escape(self.subject)}</SubjectFromWebIdentityToken>"
                 f"<Provider>{escape(self.issuer)}</Provider><Audience>{escape(self.audience)}</Audience>")
        return text.replace(end, extra + end, 1).encode("utf-8")


class WebIdentity:
    """`sts.jwks_cache_seconds`, the per-issuer JWKS cache and refusal counters."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.cache: dict[str, _Jwks] = {}
        self.refused: dict[str, int] = {}
        self.accepted = 0
        self.fetches = 0
        self.reset()

    # ------------------------------------------------------------ config / admin

    def reset(self) -> None:
        """Settings back to defaults (the cache and counters stay; see clear())."""
        self.jwks_cache_seconds = DEFAULT_JWKS_CACHE_SECONDS

    def clear(self) -> None:
        """Forgets every cached JWKS and zeroes the counters (`/_berth/reset`)."""
        with self.lock:
            self.cache.clear()
        self.reset_stats()

    def reset_stats(self) -> None:
        with self.lock:
            self.refused = {}
            self.accepted = 0
            self.fetches = 0

    def update(self, cfg: dict[str, Any]) -> None:
        if "jwks_cache_seconds" in cfg:
            v = cfg["jwks_cache_seconds"]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ValueError("jwks_cache_seconds must be a number >= 0")
            with self.lock:
                self.jwks_cache_seconds = float(v)

    def describe(self) -> dict[str, Any]:
        return {"jwks_cache_seconds": self.jwks_cache_seconds}

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {"accepted": self.accepted, "refused": dict(sorted(self.refused.items())),
                    "jwks_fetches": self.fetches, "issuers_cached": len(self.cache)}

    # ------------------------------------------------------------ verification

    def verify(self, info: RequestInfo, trust_cfg: trust.TrustConfig) -> Grant:
        """Verifies the call's token and the role's trust policy; raises Refused."""
        try:
            grant = self._verify(info, trust_cfg)
        except Refused as r:
            with self.lock:
                self.refused[r.reason] = self.refused.get(r.reason, 0) + 1
            raise
        with self.lock:
            self.accepted += 1
        return grant

    def _verify(self, info: RequestInfo, trust_cfg: trust.TrustConfig) -> Grant:
        from joserfc import jws
        from joserfc.errors import JoseError

        params = dict(info.params)
        if info.protocol == "json":
            params.update(info.json_body())
        role_arn = params.get("RoleArn") or ""
        token = params.get("WebIdentityToken") or ""
        session = params.get("RoleSessionName") or ""
        account = trust._arn_account(role_arn)
        if not account or ":role/" not in role_arn:
            raise Refused(VALIDATION, "validation", f"RoleArn is not a role ARN: {role_arn[:200]!r}")
        if not token:
            raise Refused(VALIDATION, "validation", "WebIdentityToken is required")
        partition = role_arn.split(":")[1]

        # 1. structure
        try:
            obj = jws.extract_compact(token.encode("utf-8"))
            header = obj.headers()
            claims = json.loads(obj.payload.decode("utf-8"))
        except (JoseError, ValueError, UnicodeError, TypeError) as e:
            raise Refused(INVALID, "malformed", f"The web identity token is not a valid JWT (compact JWS): {e}") from None
        if not isinstance(claims, dict):
            raise Refused(INVALID, "malformed", "The web identity token's payload is not a JSON object")
        if "b64" in header:
            raise Refused(INVALID, "malformed", "The web identity token uses an unencoded payload (b64 header)")
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise Refused(INVALID, "unsupported_alg",
                          f"Unsupported token signing algorithm {str(alg)[:20]!r}: expected one of {', '.join(ALGORITHMS)}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Refused(INVALID, "malformed", "The web identity token's header has no kid")
        issuer = claims.get("iss")
        if not isinstance(issuer, str) or not issuer:
            raise Refused(INVALID, "malformed", "The web identity token has no iss claim")

        # 2. the provider, in the role's account
        provider = _find_provider(account, partition, issuer)
        if provider is None:
            raise Refused(INVALID, "no_provider",
                          f"No OpenIDConnect provider found in account {account} for issuer (iss) {issuer[:300]}")
        parsed = urlparse(issuer)
        scheme = parsed.scheme.lower()
        if scheme not in ("http", "https") or (scheme == "http" and not is_loopback_host(parsed.hostname)):
            raise Refused(INVALID, "insecure_issuer", f"The issuer (iss) {issuer[:300]} must use https "
                          "(the emulator accepts http only on loopback hosts)")
        if not is_loopback_host(parsed.hostname):
            raise Refused(IDP_ERROR, "idp_not_loopback", f"The emulator only contacts identity providers on loopback "
                          f"hosts; cannot verify tokens of {issuer[:300]}")

        # 3. signature with the issuer's published key
        jwks = self._jwks(issuer)
        candidates = jwks.keys.get(kid)
        if not candidates:
            age = time.monotonic() - jwks.fetched
            raise Refused(INVALID, "unknown_kid",
                          f"Couldn't find the token's signing key kid {kid[:100]!r} in the JWKS of {issuer[:300]} "
                          f"(fetched {age:.0f} s ago from {jwks.uri}; refetched after {self.jwks_cache_seconds:g} s)")
        problems = []
        verified = False
        for key in candidates:
            if isinstance(key, str):
                problems.append(key)
                continue
            if key.get("alg") and key.get("alg") != alg:
                problems.append(f"the key is for {key.get('alg')}, the token uses {alg}")
                continue
            try:
                if jws.validate_compact(obj, key, algorithms=[alg]):
                    verified = True
                    break
                problems.append("the signature does not verify")
            except JoseError as e:
                problems.append(str(e))
        if not verified:
            raise Refused(INVALID, "bad_signature",
                          f"Invalid signature of the web identity token (kid {kid[:100]!r}, {alg}): {'; '.join(problems)}")

        # 4. claims
        now = time.time()
        exp = claims.get("exp")
        if not _is_number(exp):
            raise Refused(INVALID, "missing_claim", "The web identity token has no numeric exp claim")
        if now >= exp:
            raise Refused(EXPIRED, "expired", f"Token expired: current date/time {int(now)} must be before the "
                          f"expiration date/time {int(exp)} (exp)")
        for name in ("nbf", "iat"):
            value = claims.get(name)
            if value is None:
                continue
            if not _is_number(value):
                raise Refused(INVALID, "malformed", f"The web identity token's {name} claim is not a number")
            if value > now + SKEW_SECONDS:
                raise Refused(INVALID, "not_yet_valid", f"The web identity token is not valid yet: {name} {int(value)} "
                              f"is after the current date/time {int(now)}")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise Refused(INVALID, "missing_claim", "The web identity token has no sub claim")
        aud = claims.get("aud")
        auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        client_ids = [str(c) for c in (provider.client_id_list or [])]
        audience = next((a for a in auds if isinstance(a, str) and a in client_ids), None)
        if audience is None:
            shown = json.dumps(aud)[:200] if aud is not None else "missing"
            raise Refused(INVALID, "bad_audience", f"Incorrect token audience: aud {shown} is not a client id of "
                          f"{provider.arn}")

        # 5. the role and its trust policy
        role = trust._find_role(role_arn)
        if role is None:
            raise Refused(DENIED, "role_missing", f"{trust.WEB_IDENTITY_DENIED} (role {role_arn} does not exist)")
        if trust_cfg.enforce:
            denied = trust.check_web_identity_trust(role, provider.arn, str(provider.url).rstrip("/"), subject,
                                                    audience, session or None)
            if denied:
                raise Refused(DENIED, "trust_denied", denied)
        return Grant(issuer=issuer, provider_arn=provider.arn, subject=subject, audience=audience,
                     role_id=str(role.id), session_name=session)

    def _jwks(self, issuer: str) -> _Jwks:
        """The issuer's JWKS, from the cache while it is younger than jwks_cache_seconds."""
        with self.lock:
            entry = self.cache.get(issuer)
            if entry is not None and time.monotonic() - entry.fetched < self.jwks_cache_seconds:
                return entry
        base = issuer.rstrip("/")
        discovery = _fetch_json(base + "/.well-known/openid-configuration", "OpenID discovery document")
        uri = discovery.get("jwks_uri")
        if not isinstance(uri, str) or not uri:
            raise Refused(IDP_ERROR, "idp_invalid", f"The OpenID discovery document of {issuer[:300]} has no jwks_uri")
        target = urlparse(uri)
        issuer_host = urlparse(issuer).hostname
        if target.scheme not in ("http", "https") or not is_loopback_host(target.hostname) or (
                target.scheme == "http" and target.hostname != issuer_host):
            raise Refused(IDP_ERROR, "idp_invalid", f"jwks_uri {uri[:300]} of {issuer[:300]} must be on the issuer's "
                          "loopback host (http) or a loopback host (https)")
        entry = _Jwks(keys=_import_jwks(_fetch_json(uri, "JWKS"), uri), fetched=time.monotonic(), uri=uri)
        with self.lock:
            self.cache[issuer] = entry
            self.fetches += 1
        return entry


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _import_jwks(doc: dict[str, Any], uri: str) -> dict[str, list[Any]]:
    """kid -> usable public keys (RSA / EC, `use` sig or absent); a key that does not
    import is kept as a message so the refusal can say so."""
    from joserfc import jwk
    from joserfc.errors import JoseError

    keys = doc.get("keys")
    if not isinstance(keys, list):
        raise Refused(IDP_ERROR, "idp_invalid", f"The JWKS at {uri} has no keys list")
    out: dict[str, list[Any]] = {}
    for k in keys:
        if not isinstance(k, dict) or not isinstance(k.get("kid"), str):
            continue
        bucket = out.setdefault(k["kid"], [])
        if k.get("kty") not in ("RSA", "EC"):
            bucket.append(f"the key is of type {str(k.get('kty'))[:20]!r}, not RSA or EC")
            continue
        if k.get("use") not in (None, "sig"):
            bucket.append(f"the key's use is {str(k.get('use'))[:20]!r}, not sig")
            continue
        public = {name: v for name, v in k.items() if name not in ("d", "p", "q", "dp", "dq", "qi", "oth")}
        try:
            bucket.append(jwk.import_key(public))
        except (JoseError, ValueError, TypeError) as e:
            bucket.append(f"the key does not import: {e}")
    return out
