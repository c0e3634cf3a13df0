"""AWS error responses in each wire protocol, with service-appropriate codes."""

from __future__ import annotations

import json
import uuid
from typing import Any
from xml.sax.saxutils import escape

from .identity import RequestInfo

Response = tuple[int, list[tuple[str, str]], bytes]

# (code, HTTP status) per service for the fault kinds the emulator injects.
THROTTLE = {
    "cloudcontrol": ("ThrottlingException", 400),
    "sts": ("Throttling", 400),
    "iam": ("Throttling", 400),
    "rds": ("Throttling", 400),
    "ec2": ("RequestLimitExceeded", 503),
    "organizations": ("TooManyRequestsException", 400),
    "ecs": ("ThrottlingException", 400),
    "lambda": ("TooManyRequestsException", 429),
    "account": ("TooManyRequestsException", 429),
    "s3": ("SlowDown", 503),
}
DENIED = {
    "cloudcontrol": ("AccessDeniedException", 400),
    "sts": ("AccessDenied", 403),
    "iam": ("AccessDenied", 403),
    "rds": ("AccessDenied", 403),
    "ec2": ("UnauthorizedOperation", 403),
    "organizations": ("AccessDeniedException", 400),
    "ecs": ("AccessDeniedException", 400),
    "lambda": ("AccessDeniedException", 403),
    "account": ("AccessDeniedException", 403),
    "s3": ("AccessDenied", 403),
}


def request_id() -> str:
    return str(uuid.uuid4())


def throttle_code(service: str) -> tuple[str, int]:
    return THROTTLE.get(service, ("ThrottlingException", 400))


def denied_code(service: str) -> tuple[str, int]:
    return DENIED.get(service, ("AccessDeniedException", 403))


def server_error_code(service: str, status: int) -> str:
    if status == 503:
        return "ServiceUnavailable" if service != "cloudcontrol" else "ServiceUnavailableException"
    if service in ("s3", "ec2", "sts", "iam", "rds"):
        return "InternalError"
    return "InternalFailure"


def json_response(payload: Any, status: int = 200, version: str = "1.0", extra: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    headers = [
        ("Content-Type", f"application/x-amz-json-{version}"),
        ("x-amzn-RequestId", request_id()),
        ("Content-Length", str(len(body))),
    ]
    if extra:
        headers.extend(extra)
    return status, headers, body


def error_response(info: RequestInfo, code: str, message: str, status: int) -> Response:
    rid = request_id()
    proto = info.protocol
    if proto == "json":
        body = json.dumps({"__type": code, "Message": message}, ensure_ascii=False).encode("utf-8")
        headers = [
            ("Content-Type", f"application/x-amz-json-{info.json_version}"),
            ("x-amzn-RequestId", rid),
            ("x-amzn-ErrorType", code),
        ]
    elif proto == "rest-json":
        body = json.dumps({"Type": "User" if status < 500 else "Service", "Message": message, "message": message}).encode("utf-8")
        headers = [
            ("Content-Type", "application/json"),
            ("x-amzn-RequestId", rid),
            ("x-amzn-ErrorType", code),
        ]
    elif proto == "ec2":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Response><Errors><Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error></Errors>"
            f"<RequestID>{rid}</RequestID></Response>"
        ).encode("utf-8")
        headers = [("Content-Type", "text/xml;charset=UTF-8")]
    elif proto == "rest-xml":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message><RequestId>{rid}</RequestId></Error>"
        ).encode("utf-8")
        headers = [("Content-Type", "application/xml"), ("x-amz-request-id", rid)]
    else:  # query
        kind = "Sender" if status < 500 else "Receiver"
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{rid}</RequestId></ErrorResponse>"
        ).encode("utf-8")
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)]
    headers.append(("Content-Length", str(len(body))))
    return status, headers, body
