"""Fault injection and call statistics.

A fault configuration is a list of rules; each rule matches requests by API
(`service:Action` glob, e.g. `cloudcontrol:ListResources`, `cloudcontrol:*`,
`*`), optionally X-Amz-Target glob, account(s), region(s) and, for STS
AssumeRole*, the RoleArn glob. A matching rule can add latency, and answer
AccessDenied, a 5xx, a throttling error for a fraction of calls, or a
throttling error beyond a token-bucket rate limit.

Decisions are reproducible: whether call number n (counted per rule, API,
account and region) is throttled depends only on (seed, rule, API, account,
region, n), not on how calls of other scopes interleave.
"""

from __future__ import annotations

import fnmatch
import hashlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .identity import RequestInfo

RULE_KEYS = {
    "api", "target", "account", "region", "role_arn",
    "throttle", "latency_ms", "latency_jitter_ms", "access_denied", "error_5xx", "status",
    "rate_limit", "burst", "per", "max_faults", "message", "code",
}


class ConfigError(ValueError):
    pass


def _as_set(value: Any) -> set[str] | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple, set)):
        return {str(v) for v in value}
    return {str(value)}


def _fraction(value: Any, name: str) -> float:
    if value is True:
        return 1.0
    if value is False or value is None:
        return 0.0
    try:
        f = float(value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{name} must be a number in [0, 1] or a boolean") from e
    if not 0.0 <= f <= 1.0:
        raise ConfigError(f"{name} must be in [0, 1]")
    return f


@dataclass
class Rule:
    index: int
    api: str = "*"
    target: str | None = None
    accounts: set[str] | None = None
    regions: set[str] | None = None
    role_arn: str | None = None
    throttle: float = 0.0
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    access_denied: float = 0.0
    error_5xx: float = 0.0
    status: int = 500
    rate_limit: float | None = None
    burst: float | None = None
    per: str = "api"  # "api": one bucket per (account, region, API); "rule": shared by all APIs the rule matches
    max_faults: int | None = None
    message: str | None = None
    code: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    faults: int = 0

    @classmethod
    def from_json(cls, index: int, d: dict[str, Any]) -> "Rule":
        if not isinstance(d, dict):
            raise ConfigError("each rule must be an object")
        unknown = set(d) - RULE_KEYS
        if unknown:
            raise ConfigError(f"unknown rule keys: {sorted(unknown)}")
        r = cls(index=index, raw=dict(d))
        r.api = str(d.get("api", "*"))
        r.target = d.get("target")
        r.accounts = _as_set(d.get("account"))
        r.regions = _as_set(d.get("region"))
        r.role_arn = d.get("role_arn")
        r.throttle = _fraction(d.get("throttle"), "throttle")
        r.access_denied = _fraction(d.get("access_denied"), "access_denied")
        r.error_5xx = _fraction(d.get("error_5xx"), "error_5xx")
        r.latency_ms = float(d.get("latency_ms", 0) or 0)
        r.latency_jitter_ms = float(d.get("latency_jitter_ms", 0) or 0)
        r.status = int(d.get("status", 500))
        if not 500 <= r.status <= 599:
            raise ConfigError("status must be a 5xx code")
        if d.get("rate_limit") is not None:
            r.rate_limit = float(d["rate_limit"])
            if r.rate_limit <= 0:
                raise ConfigError("rate_limit must be > 0 (calls per second)")
            r.burst = float(d.get("burst", r.rate_limit))
            if r.burst < 1:
                raise ConfigError("burst must be >= 1")
        r.per = str(d.get("per", "api"))
        if r.per not in ("api", "rule"):
            raise ConfigError('per must be "api" or "rule"')
        r.max_faults = int(d["max_faults"]) if d.get("max_faults") is not None else None
        r.message = d.get("message")
        r.code = d.get("code")
        return r

    def matches(self, info: RequestInfo) -> bool:
        if self.api not in ("*", "") and not fnmatch.fnmatchcase(info.api, self.api):
            # also accept an X-Amz-Target style pattern in "api"
            if not (info.target and fnmatch.fnmatchcase(info.target, self.api)):
                return False
        if self.target and not (info.target and fnmatch.fnmatchcase(info.target, self.target)):
            return False
        if self.accounts is not None and info.account not in self.accounts:
            return False
        if self.regions is not None and info.region not in self.regions:
            return False
        if self.role_arn is not None:
            arn = info.params.get("RoleArn") or info.json_body().get("RoleArn")
            if not arn or not fnmatch.fnmatchcase(arn, self.role_arn):
                return False
        return True

    def exhausted(self) -> bool:
        return self.max_faults is not None and self.faults >= self.max_faults


class TokenBucket:
    def __init__(self, rate: float, burst: float):
        self.rate = rate
        self.capacity = burst
        self.tokens = burst
        self.last = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
            self.last = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return True
            return False


def _unit(seed: Any, *parts: Any) -> float:
    h = hashlib.blake2b(repr((seed,) + parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2.0**64


@dataclass
class Decision:
    latency_s: float = 0.0
    fault: str | None = None  # denied | error_5xx | throttled | rate_limited
    status: int = 0
    code: str | None = None
    message: str | None = None


class FaultEngine:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seed: Any = 0
        self.rules: list[Rule] = []
        self.counters: dict[tuple, int] = {}
        self.buckets: dict[tuple, TokenBucket] = {}

    def configure(self, cfg: dict[str, Any], append: bool = False) -> None:
        if not isinstance(cfg, dict):
            raise ConfigError("fault config must be an object")
        rules_json = cfg.get("rules", [])
        if not isinstance(rules_json, list):
            raise ConfigError("rules must be a list")
        with self.lock:
            base = self.rules if append else []
            new = [Rule.from_json(len(base) + i, r) for i, r in enumerate(rules_json)]
            self.rules = base + new
            if "seed" in cfg or not append:
                self.seed = cfg.get("seed", 0)
            if not append:
                self.counters = {}
                self.buckets = {}

    def clear(self) -> None:
        with self.lock:
            self.rules = []
            self.counters = {}
            self.buckets = {}
            self.seed = 0

    def describe(self) -> dict[str, Any]:
        with self.lock:
            return {
                "seed": self.seed,
                "rules": [dict(r.raw, _faults_injected=r.faults) for r in self.rules],
            }

    def decide(self, info: RequestInfo) -> Decision:
        d = Decision()
        with self.lock:
            rules = [r for r in self.rules if r.matches(info)]
            if not rules:
                return d
            for r in rules:
                if r.latency_ms or r.latency_jitter_ms:
                    jitter = 0.0
                    if r.latency_jitter_ms:
                        n = self._next(("lat", r.index, info.api, info.account, info.region))
                        jitter = _unit(self.seed, "lat", r.index, info.api, info.account, info.region, n) * r.latency_jitter_ms
                    d.latency_s += (r.latency_ms + jitter) / 1000.0
            for r in rules:
                if r.exhausted():
                    continue
                key = (r.index, info.api, info.account, info.region)
                if r.access_denied:
                    n = self._next(("deny",) + key)
                    if r.access_denied >= 1.0 or _unit(self.seed, "deny", *key, n) < r.access_denied:
                        return self._fault(d, r, "denied")
                if r.error_5xx:
                    n = self._next(("5xx",) + key)
                    if r.error_5xx >= 1.0 or _unit(self.seed, "5xx", *key, n) < r.error_5xx:
                        return self._fault(d, r, "error_5xx")
                if r.rate_limit is not None:
                    bkey = (r.index, info.account, info.region) + ((info.api,) if r.per == "api" else ())
                    bucket = self.buckets.get(bkey)
                    if bucket is None:
                        bucket = self.buckets[bkey] = TokenBucket(r.rate_limit, r.burst or r.rate_limit)
                    if not bucket.take():
                        return self._fault(d, r, "rate_limited")
                if r.throttle:
                    n = self._next(("thr",) + key)
                    if r.throttle >= 1.0 or _unit(self.seed, "thr", *key, n) < r.throttle:
                        return self._fault(d, r, "throttled")
        return d

    def _next(self, key: tuple) -> int:
        n = self.counters.get(key, 0)
        self.counters[key] = n + 1
        return n

    @staticmethod
    def _fault(d: Decision, r: Rule, kind: str) -> Decision:
        r.faults += 1
        d.fault = kind
        d.status = r.status
        d.code = r.code
        d.message = r.message
        return d


class Stats:
    """Per-API and per-(account/region, API) call counters."""

    FIELDS = ("calls", "ok", "errors", "throttled", "rate_limited", "denied", "errors_5xx", "expired")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.started = time.time()
        self.apis: dict[str, dict[str, Any]] = {}
        self.scopes: dict[str, dict[str, dict[str, Any]]] = {}
        self.total = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def begin(self) -> None:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def record(self, info: RequestInfo, status: int, fault: str | None, latency_s: float) -> None:
        now = time.time()
        with self.lock:
            self.in_flight -= 1
            self.total += 1
            scope = f"{info.account}/{info.region}"
            for entry in (
                self.apis.setdefault(info.api, self._blank()),
                self.scopes.setdefault(scope, {}).setdefault(info.api, self._blank()),
            ):
                entry["calls"] += 1
                if status < 400:
                    entry["ok"] += 1
                else:
                    entry["errors"] += 1
                if fault == "throttled":
                    entry["throttled"] += 1
                elif fault == "rate_limited":
                    entry["throttled"] += 1
                    entry["rate_limited"] += 1
                elif fault == "denied":
                    entry["denied"] += 1
                elif fault == "error_5xx":
                    entry["errors_5xx"] += 1
                elif fault == "expired":
                    entry["expired"] += 1
                entry["injected_latency_ms"] += latency_s * 1000.0
                if entry["first"] is None:
                    entry["first"] = now
                entry["last"] = now

    def _blank(self) -> dict[str, Any]:
        d: dict[str, Any] = {k: 0 for k in self.FIELDS}
        d["injected_latency_ms"] = 0.0
        d["first"] = None
        d["last"] = None
        return d

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            def clean(e: dict[str, Any]) -> dict[str, Any]:
                out = dict(e)
                out["injected_latency_ms"] = round(out["injected_latency_ms"], 3)
                return out

            totals = {k: 0 for k in self.FIELDS}
            for e in self.apis.values():
                for k in self.FIELDS:
                    totals[k] += e[k]
            return {
                "since": self.started,
                "elapsed_s": round(time.time() - self.started, 3),
                "total": self.total,
                "totals": totals,
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
                "apis": {k: clean(v) for k, v in sorted(self.apis.items())},
                "scopes": {
                    s: {k: clean(v) for k, v in sorted(apis.items())}
                    for s, apis in sorted(self.scopes.items())
                },
            }
