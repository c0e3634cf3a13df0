"""The emulator's WSGI application and server.

Every request goes through `EmulatorApp`:
  /_berth/*                 admin API (faults, stats, config, regions, reset)
  /moto-api/*               moto's own API, passed through untouched
  anything else             identified (service, action, account, region),
                            counted, fault-injected, then answered by the shim
                            (Cloud Control, account regions, STS trust checks,
                            web-identity token verification) or by moto.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import sys
import threading
import time
import traceback
from typing import Any, Callable, Iterable

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from waitress.wasyncore import ExitNow

from . import __version__, cloudcontrol, regions, trust, webidentity
from .errors import Response, denied_code, error_response, server_error_code, throttle_code
from .faults import ConfigError, Decision, FaultEngine, Stats
from .identity import RequestInfo, parse_request

log = logging.getLogger("berth_aws_emulator")

_STATUS_TEXT = {200: "OK", 204: "No Content", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
                405: "Method Not Allowed", 429: "Too Many Requests", 500: "Internal Server Error",
                501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


def _status_line(code: int) -> str:
    return f"{code} {_STATUS_TEXT.get(code, 'Error')}"


class EmulatorApp:
    def __init__(self) -> None:
        self.moto = DomainDispatcherApplication(create_backend_app)
        self.faults = FaultEngine()
        self.stats = Stats()
        self.regions = regions.RegionConfig()
        self.trust = trust.TrustConfig()
        self.sessions = trust.Sessions()
        self.web_identity = webidentity.WebIdentity()
        self.cc_config = cloudcontrol.CONFIG

    # ------------------------------------------------------------------ WSGI entry

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or ""
        if path.startswith("/_berth"):
            return self._send(start_response, self.admin(environ))
        if path.startswith("/moto-api") or path == "/favicon.ico":
            return self.moto(environ, start_response)
        try:
            info = parse_request(environ)
        except Exception:
            log.exception("could not identify request; passing it to moto")
            return self.moto(environ, start_response)

        self.stats.begin()
        status = 500
        decision = Decision()
        try:
            if self.sessions.expired(info.access_key):
                decision = Decision(fault="expired")
                code = "ExpiredTokenException" if info.protocol in ("json", "rest-json") else "ExpiredToken"
                resp = error_response(info, code, "The security token included in the request is expired", 400)
                status = resp[0]
                return self._send(start_response, resp)
            decision = self.faults.decide(info)
            if decision.latency_s > 0:
                time.sleep(decision.latency_s)
            if decision.fault:
                resp = self._fault_response(info, decision)
                status = resp[0]
                return self._send(start_response, resp)
            rewrite: Callable[[bytes], bytes] | None = None
            if info.service == "sts" and info.action == "AssumeRoleWithWebIdentity":
                try:
                    rewrite = self.web_identity.verify(info, self.trust).decorate
                except webidentity.Refused as r:
                    log.info("AssumeRoleWithWebIdentity refused (%s): %s", r.reason, r.message)
                    resp = error_response(info, r.code, r.message, r.status)
                    status = resp[0]
                    return self._send(start_response, resp)
            resp = self._shim(info)
            if resp is not None:
                status = resp[0]
                return self._send(start_response, resp)
            status, body = self._call_moto(environ, start_response, info, rewrite)
            return body
        except Exception as e:  # never let the shim crash a request
            log.error("shim error: %s\n%s", e, traceback.format_exc())
            resp = error_response(info, server_error_code(info.service, 500), f"emulator error: {e}", 500)
            status = 500
            return self._send(start_response, resp)
        finally:
            self.stats.record(info, status, decision.fault, decision.latency_s)

    def _call_moto(self, environ: dict[str, Any], start_response: Callable, info: RequestInfo,
                   rewrite: Callable[[bytes], bytes] | None = None) -> tuple[int, Iterable[bytes]]:
        """Lets moto answer; STS credential answers are buffered so the issued keys'
        expiry is recorded (and `rewrite` can complete the answer)."""
        buffer = info.service == "sts" and info.action in trust.CREDENTIAL_ACTIONS
        captured: dict[str, Any] = {}

        def capture(status_line: str, headers: list, exc_info: Any = None):
            try:
                captured["status"] = int(status_line.split(" ", 1)[0])
            except ValueError:
                captured["status"] = 500
            captured["line"], captured["headers"] = status_line, headers
            if buffer:
                return lambda data: None
            return start_response(status_line, headers, exc_info) if exc_info else start_response(status_line, headers)

        try:
            body = self.moto(environ, capture)
        except NotImplementedError as e:
            # moto lacks this action: answer a clear, non-retryable 501 instead of a retried 500
            return 501, self._send(start_response, error_response(
                info, "NotImplemented", f"not implemented by the emulator (moto): {e}", 501))
        status = captured.get("status", 200)
        if not buffer:
            return status, body
        try:
            data = b"".join(body)
        finally:
            if hasattr(body, "close"):
                body.close()
        if status == 200:
            data = self.sessions.issued(data)
            if rewrite is not None:
                data = rewrite(data)
        headers = [(k, v) for k, v in captured.get("headers", []) if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(data))))
        start_response(captured.get("line", "200 OK"), headers)
        return status, [data]

    @staticmethod
    def _send(start_response: Callable, resp: Response) -> list[bytes]:
        status, headers, body = resp
        start_response(_status_line(status), headers)
        return [body]

    # ------------------------------------------------------------------ shim routing

    def _shim(self, info: RequestInfo) -> Response | None:
        if info.service == "cloudcontrol":
            return cloudcontrol.handle(info)
        if info.service == "account":
            return regions.handle(info, self.regions)
        if info.service == "organizations" and info.action not in ORG_MEMBER_ACTIONS:
            denied = _org_member_denied(info)
            if denied:
                return denied
        if info.service == "ec2" and info.action == "DescribeRegions":
            return regions.describe_regions(info, self.regions)
        if info.service == "sts" and info.action == "AssumeRole":
            msg = trust.check_assume_role(info, self.trust)
            if msg:
                code, status = denied_code("sts")
                return error_response(info, code, msg, status)
        if info.service == "iam" and info.action == "CreateOpenIDConnectProvider":
            problem = webidentity.provider_url_problem(str(info.params.get("Url") or ""))
            if problem:
                return error_response(info, "InvalidInput", problem, 400)
        return None

    def _fault_response(self, info: RequestInfo, d: Decision) -> Response:
        if d.fault == "denied":
            code, status = denied_code(info.service)
            msg = d.message or (
                f"User: arn:aws:sts::{info.account}:assumed-role/berth/emulator is not authorized to perform: "
                f"{info.service}:{info.action} in region {info.region} (injected by the Berth emulator)"
            )
        elif d.fault == "error_5xx":
            status = d.status or 500
            code = server_error_code(info.service, status)
            msg = d.message or "We encountered an internal error. Please try again. (injected by the Berth emulator)"
        else:  # throttled | rate_limited
            code, status = throttle_code(info.service)
            msg = d.message or ("Rate exceeded" if d.fault == "rate_limited" else "Rate exceeded (injected throttling)")
        return error_response(info, d.code or code, msg, status)

    # ------------------------------------------------------------------ admin API

    def admin(self, environ: dict[str, Any]) -> Response:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = environ.get("PATH_INFO", "").rstrip("/")
        body: Any = None
        if method in ("POST", "PUT", "PATCH"):
            try:
                n = int(environ.get("CONTENT_LENGTH") or 0)
                raw = environ["wsgi.input"].read(n) if n else b""
                body = json.loads(raw or b"{}")
            except (ValueError, UnicodeDecodeError) as e:
                return _admin_json({"error": f"invalid JSON body: {e}"}, 400)
        try:
            return self._admin(method, path, body, environ)
        except (ConfigError, ValueError, TypeError, KeyError) as e:
            return _admin_json({"error": str(e)}, 400)

    def _admin(self, method: str, path: str, body: Any, environ: dict[str, Any]) -> Response:
        if path in ("/_berth", "/_berth/health"):
            return _admin_json({"ok": True, "version": __version__, "types": sorted(cloudcontrol.TYPES)})
        if path == "/_berth/faults":
            if method == "GET":
                return _admin_json(self.faults.describe())
            if method == "DELETE":
                self.faults.clear()
                return _admin_json(self.faults.describe())
            if method in ("POST", "PUT"):
                append = bool(body.pop("append", False)) if isinstance(body, dict) else False
                self.faults.configure(body, append=append)
                return _admin_json(self.faults.describe())
        if path == "/_berth/stats":
            if method == "GET":
                return _admin_json(self._stats())
            if method == "DELETE":
                with self.stats.lock:
                    in_flight = self.stats.in_flight
                    self.stats.reset()
                    self.stats.in_flight = in_flight
                self.web_identity.reset_stats()
                return _admin_json(self._stats())
        if path == "/_berth/config":
            if method == "GET":
                return _admin_json(self._config())
            if method == "DELETE":
                self.cc_config.reset()
                self.trust.reset()
                self.sessions.reset()
                self.web_identity.reset()
                return _admin_json(self._config())
            if method in ("POST", "PUT"):
                if not isinstance(body, dict):
                    raise ValueError("config must be an object")
                cc = {k: v for k, v in body.items() if k not in ("trust", "sts")}
                self.cc_config.update(cc)
                if "trust" in body:
                    self.trust.update(dict(body["trust"]))
                if "sts" in body:
                    sts = dict(body["sts"])
                    self.web_identity.update(sts)
                    self.sessions.update(sts)
                return _admin_json(self._config())
        if path == "/_berth/regions":
            if method == "GET":
                return _admin_json(self.regions.describe())
            if method == "DELETE":
                self.regions.reset()
                return _admin_json(self.regions.describe())
            if method in ("POST", "PUT"):
                if not isinstance(body, dict):
                    raise ValueError("regions config must be an object")
                self.regions.update(body)
                return _admin_json(self.regions.describe())
        if path == "/_berth/reset" and method == "POST":
            from moto.moto_api._internal.models import moto_api_backend

            moto_api_backend.reset()
            self.faults.clear()
            self.stats.reset()
            self.regions.reset()
            self.cc_config.reset()
            self.trust.reset()
            self.sessions.reset()
            self.sessions.expiry.clear()
            self.web_identity.reset()
            self.web_identity.clear()
            return _admin_json({"reset": True})
        return _admin_json({"error": f"no admin route {method} {path}"}, 404)

    def _config(self) -> dict[str, Any]:
        out = self.cc_config.describe()
        out["trust"] = self.trust.describe()
        out["sts"] = {**self.sessions.describe(), **self.web_identity.describe()}
        return out

    def _stats(self) -> dict[str, Any]:
        out = self.stats.snapshot()
        out["web_identity"] = self.web_identity.stats()
        return out


ORG_MEMBER_ACTIONS = {"DescribeOrganization", "LeaveOrganization", "ListHandshakesForAccount", "AcceptHandshake",
                      "DeclineHandshake", "DescribeHandshake"}


def _org_member_denied(info: RequestInfo) -> Response | None:
    """Member accounts may only describe their organization (moto answers them with empty lists)."""
    try:
        from moto.organizations.models import organizations_backends

        mgmt = organizations_backends.master_accounts.get(info.account)
    except Exception:
        return None
    if mgmt and mgmt[0] != info.account:
        return error_response(info, "AccessDeniedException", "You don't have permissions to access this resource.", 400)
    return None


def _admin_json(payload: Any, status: int = 200) -> Response:
    body = json.dumps(payload, ensure_ascii=False, indent=None).encode("utf-8")
    return status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))], body


# ---------------------------------------------------------------------- server


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(a[4][0]).is_loopback for a in socket.getaddrinfo(host, None))
        except OSError:
            return False


def _logged(app: Callable, log: logging.Logger) -> Callable:
    """The app, logging one line per request (method, path, status) to stderr."""

    def call(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        def start(status: str, headers: list, exc_info: Any = None) -> Any:
            log.info("%s %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"), status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return call


def _moto_environ(app: Callable) -> Callable:
    """The app, given the environ keys moto reads that waitress does not set:
    `RAW_URI` (the path before percent-decoding, for S3 keys)."""

    def call(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        environ.setdefault("RAW_URI", environ.get("REQUEST_URI", ""))
        return app(environ, start_response)

    return call


# Threads serving requests at once. A request holds its thread while injected
# latency sleeps, so this must exceed the calls a client keeps in flight
# (berth: 64 AWS calls plus plugin lookups) or latency would queue.
SERVER_THREADS = 256


def make_server(host: str, port: int, app: EmulatorApp | None = None, log_requests: bool = False):
    """A waitress server: HTTP/1.1 with keep-alive, as AWS answers.

    (Werkzeug's dev server, which moto_server uses, closes the connection
    after every response, so each call cost a TCP handshake and a new
    server thread, and the emulator's own CPU, not the rate limits it
    emulates, set the pace of a large sync.)
    """
    from waitress.server import create_server

    if not _is_loopback(host):
        raise ValueError(f"refusing to listen on non-loopback address {host!r}")
    app = app or EmulatorApp()
    wsgi: Callable = _moto_environ(app)
    if log_requests:
        wsgi = _logged(wsgi, logging.getLogger("berth_aws_emulator.requests"))
    server = create_server(
        wsgi,
        host=host,
        port=port,
        # moto reads SERVER_NAME as the host a request was sent to (waitress
        # would say `waitress.invalid`).
        server_name=host,
        threads=SERVER_THREADS,
        connection_limit=4096,
        backlog=1024,
        channel_timeout=300,
        asyncore_use_poll=True,
        ident="berth-aws-emulator",
    )
    return server, app


def serve_in_thread(host: str = "127.0.0.1", port: int = 0):
    """For tests: starts the server on a background thread; returns (server, app, endpoint)."""
    server, app = make_server(host, port)
    t = threading.Thread(target=server.run, name="berth-aws-emulator", daemon=True)
    t.start()
    return server, app, f"http://{host}:{int(server.effective_port)}"


class _Stop(ExitNow):
    """Raised by the signal handler to leave the server loop.

    The handler can run while the loop is inside a channel's read or write
    handler, which turns any ordinary exception into a logged error and keeps
    serving; `ExitNow` is one of the few it lets through.
    """


def main_serve(host: str, port: int, log_requests: bool = False, ready_file: str | None = None) -> int:
    import signal

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    if not log_requests:
        logging.getLogger("waitress").setLevel(logging.ERROR)
    server, _ = make_server(host, port, log_requests=log_requests)

    def stop(signum: int, frame: Any) -> None:
        # Signal handlers run on the main thread, which is in the server loop:
        # leaving the loop by an exception ends it.
        raise _Stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    actual = int(server.effective_port)
    endpoint = f"http://{host}:{actual}"
    if ready_file:
        with open(ready_file, "w") as f:
            f.write(endpoint + "\n")
    print(json.dumps({"event": "ready", "endpoint": endpoint, "host": host, "port": actual, "pid": _pid()}), flush=True)
    try:
        server.run()
    except _Stop:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        server.close()
        print(json.dumps({"event": "stopped"}), flush=True)
    return 0


def _pid() -> int:
    import os

    return os.getpid()
