"""Works out who is calling what: service, action, account, region, protocol.

The account is chosen exactly the way moto chooses it (so the shim and moto
always agree): env MOTO_ACCOUNT_ID -> header `x-moto-account-id` -> the SigV4
access key (keys issued by STS AssumeRole / AssumeRoleWithWebIdentity / IAM
CreateAccessKey map to their account) -> 123456789012.
The region is the one in the SigV4 credential scope (unsigned requests:
us-east-1).
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs

from . import DEFAULT_ACCOUNT_ID

_CRED_RE = re.compile(
    r"Credential=([^/,\s]+)/(\d{8})/([^/,\s]+)/([^/,\s]+)/aws4_request"
)

# SigV4 signing names that differ from botocore's service names.
SIGNING_TO_SERVICE = {
    "cloudcontrolapi": "cloudcontrol",
    "monitoring": "cloudwatch",
    "states": "stepfunctions",
    "email": "ses",
    "execute-api": "apigateway",
    "elasticloadbalancing": "elbv2",
    "events": "events",
    "ecr": "ecr",
}

# X-Amz-Target prefixes, for requests that arrive unsigned.
TARGET_PREFIX_TO_SERVICE = {
    "CloudApiService": "cloudcontrol",
    "AWSOrganizationsV20161128": "organizations",
    "AmazonEC2ContainerServiceV20141113": "ecs",
}

UNSIGNED_ACTIONS = {"AssumeRoleWithWebIdentity": "sts", "AssumeRoleWithSAML": "sts"}

REST_XML = {"s3", "s3control", "route53", "cloudfront"}
REST_JSON = {"lambda", "account", "apigateway", "eks", "batch"}


@lru_cache(maxsize=None)
def _botocore_protocol(service: str) -> str | None:
    try:
        import botocore.session

        return botocore.session.get_session().get_service_model(service).protocol
    except Exception:
        return None


@dataclass
class RequestInfo:
    service: str
    action: str
    region: str
    account: str
    access_key: str | None
    target: str | None
    protocol: str  # json | query | ec2 | rest-json | rest-xml
    json_version: str = "1.0"
    method: str = "POST"
    path: str = "/"
    body: bytes | None = None
    params: dict[str, Any] = field(default_factory=dict)
    signed: bool = True

    @property
    def api(self) -> str:
        return f"{self.service}:{self.action}"

    def json_body(self) -> dict[str, Any]:
        if not self.body:
            return {}
        try:
            value = json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return {}
        return value if isinstance(value, dict) else {}


def _read_body(environ: dict[str, Any]) -> bytes | None:
    """Reads the whole body (when its length is known) and puts it back."""
    length = environ.get("CONTENT_LENGTH")
    if not length:
        return None
    try:
        n = int(length)
    except ValueError:
        return None
    if n <= 0:
        return b""
    body = environ["wsgi.input"].read(n)
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def current_account(environ: dict[str, Any], access_key: str | None) -> str:
    env = os.environ.get("MOTO_ACCOUNT_ID")
    if env:
        return env
    hdr = environ.get("HTTP_X_MOTO_ACCOUNT_ID")
    if hdr:
        return hdr
    if access_key:
        from moto.iam.models import get_account_id_from

        return get_account_id_from(access_key)
    return DEFAULT_ACCOUNT_ID


_ROUTER_LOCK = threading.Lock()


def _router(service: str) -> Any:
    # moto caches a service's router, but threads that ask before the first
    # one is built each build it (0.4 s of CPU when a 5,000-resource sync
    # opens with concurrent S3 calls); one builds it, the others wait.
    from moto.core.routing import get_service_router

    with _ROUTER_LOCK:
        return get_service_router(service)


def _rest_action(service: str, environ: dict[str, Any]) -> str | None:
    try:
        from moto.core.request import Request

        req = Request(environ, populate_request=False, shallow=True)
        operation, _ = _router(service).match(req)
        return operation.name
    except Exception:
        return None


def parse_request(environ: dict[str, Any]) -> RequestInfo:
    auth = environ.get("HTTP_AUTHORIZATION", "") or ""
    query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    ctype = (environ.get("CONTENT_TYPE") or "").lower()
    target = environ.get("HTTP_X_AMZ_TARGET") or None
    method = environ.get("REQUEST_METHOD", "GET").upper()
    path = environ.get("PATH_INFO", "/") or "/"

    access_key = region = signing = None
    m = _CRED_RE.search(auth)
    if not m and "X-Amz-Credential" in query:
        m = re.match(r"([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request", query["X-Amz-Credential"][0])
    if m:
        access_key, _, region, signing = m.group(1), m.group(2), m.group(3), m.group(4)
    signed = m is not None

    body = None
    params: dict[str, Any] = {}
    is_form = ctype.startswith("application/x-www-form-urlencoded")
    is_json = "json" in ctype
    if is_form or is_json or target:
        body = _read_body(environ)
    if is_form and body:
        params = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
    for k, v in query.items():
        params.setdefault(k, v[0])

    service = None
    if signing:
        service = SIGNING_TO_SERVICE.get(signing.lower(), signing.lower())
    elif target:
        service = TARGET_PREFIX_TO_SERVICE.get(target.split(".", 1)[0])
    if service is None and params.get("Action") in UNSIGNED_ACTIONS:
        service = UNSIGNED_ACTIONS[params["Action"]]
    if service is None:
        service = "unknown"
    if service == "s3" and (path.startswith("/v20180820/") or "s3-control" in environ.get("HTTP_HOST", "")):
        service = "s3control"
    region = region or "us-east-1"

    json_version = "1.0"
    if ctype.startswith("application/x-amz-json-"):
        protocol = "json"
        json_version = ctype[len("application/x-amz-json-"):][:3] or "1.0"
    elif is_form or (method == "GET" and "Action" in params):
        protocol = "ec2" if service == "ec2" else "query"
    elif service in REST_XML:
        protocol = "rest-xml"
    elif service in REST_JSON:
        protocol = "rest-json"
    else:
        protocol = _botocore_protocol(service) or "json"
        if protocol == "smithy-rpc-v2-cbor":
            protocol = "json"

    if target:
        action = target.split(".")[-1]
    elif params.get("Action"):
        action = params["Action"]
    else:
        action = None
        if protocol in ("rest-json", "rest-xml"):
            action = _rest_action(service, environ)
        if not action:
            action = f"{method} {path}"

    account = current_account(environ, access_key)
    return RequestInfo(
        service=service,
        action=action,
        region=region,
        account=account,
        access_key=access_key,
        target=target,
        protocol=protocol,
        json_version=json_version,
        method=method,
        path=path,
        body=body,
        params=params,
        signed=signed,
    )
