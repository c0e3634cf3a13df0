"""AWS Account Management region APIs (moto 5.2.5 has none of them).

`account:ListRegions`, `GetRegionOptStatus`, `EnableRegion`, `DisableRegion`
(restJson1: POST /listRegions, /getRegionOptStatus, /enableRegion,
/disableRegion). Which regions are enabled is configurable per account
through POST /_berth/regions; by default the 17 regions that need no opt-in
are ENABLED_BY_DEFAULT and the opt-in regions are DISABLED.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from typing import Any

from .errors import Response, error_response, request_id
from .identity import RequestInfo

DEFAULT_REGIONS = [
    "us-east-1", "us-east-2", "us-west-1", "us-west-2",
    "ap-south-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
    "ap-southeast-1", "ap-southeast-2", "ca-central-1",
    "eu-central-1", "eu-west-1", "eu-west-2", "eu-west-3", "eu-north-1", "sa-east-1",
]
OPT_IN_REGIONS = [
    "af-south-1", "ap-east-1", "ap-east-2", "ap-south-2", "ap-southeast-3", "ap-southeast-4",
    "ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "ca-west-1", "eu-central-2", "eu-south-1",
    "eu-south-2", "il-central-1", "me-central-1", "me-south-1", "mx-central-1",
]
ALL_REGIONS = sorted(DEFAULT_REGIONS + OPT_IN_REGIONS)
STATUSES = {"ENABLED", "ENABLING", "DISABLING", "DISABLED", "ENABLED_BY_DEFAULT"}


class RegionConfig:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.default_enabled: set[str] = set(DEFAULT_REGIONS)
        self.accounts: dict[str, set[str]] = {}

    def update(self, cfg: dict[str, Any]) -> None:
        with self.lock:
            if "enabled" in cfg:
                self.default_enabled = self._validate(cfg["enabled"])
            for acct, regions in dict(cfg.get("accounts", {})).items():
                if regions is None:
                    self.accounts.pop(str(acct), None)
                else:
                    self.accounts[str(acct)] = self._validate(regions)

    @staticmethod
    def _validate(regions: Any) -> set[str]:
        if not isinstance(regions, list):
            raise ValueError("regions must be a list of region names")
        unknown = [r for r in regions if r not in ALL_REGIONS]
        if unknown:
            raise ValueError(f"unknown regions: {unknown}")
        return set(regions)

    def enabled_for(self, account: str) -> set[str]:
        with self.lock:
            return set(self.accounts.get(account, self.default_enabled))

    def status(self, account: str, region: str) -> str:
        if region in self.enabled_for(account):
            return "ENABLED_BY_DEFAULT" if region in DEFAULT_REGIONS else "ENABLED"
        return "DISABLED"

    def set_enabled(self, account: str, region: str, enabled: bool) -> None:
        with self.lock:
            cur = set(self.accounts.get(account, self.default_enabled))
            (cur.add if enabled else cur.discard)(region)
            self.accounts[account] = cur

    def describe(self) -> dict[str, Any]:
        with self.lock:
            return {
                "enabled": sorted(self.default_enabled),
                "accounts": {a: sorted(r) for a, r in sorted(self.accounts.items())},
                "all_regions": ALL_REGIONS,
                "opt_in_regions": OPT_IN_REGIONS,
            }


class AccountError(Exception):
    def __init__(self, code: str, message: str, status: int):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _target_account(info: RequestInfo, req: dict[str, Any]) -> str:
    acct = req.get("AccountId")
    if not acct or acct == info.account:
        return info.account
    try:
        from moto.organizations.models import organizations_backends

        mgmt = organizations_backends.master_accounts.get(acct)
    except Exception:
        mgmt = None
    if not mgmt or mgmt[0] != info.account:
        raise AccountError("AccessDeniedException",
                           f"User is not authorized to manage regions of account {acct} "
                           "(only the organization's management account may pass AccountId)", 403)
    return acct


def _json(payload: Any, status: int = 200) -> Response:
    body = json.dumps(payload).encode() if payload is not None else b""
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    return status, headers, body


def handle(info: RequestInfo, cfg: RegionConfig) -> Response | None:
    op = info.action
    if op not in ("ListRegions", "GetRegionOptStatus", "EnableRegion", "DisableRegion"):
        return None
    req = info.json_body()
    try:
        acct = _target_account(info, req)
        if op == "ListRegions":
            wanted = req.get("RegionOptStatusContains")
            if wanted is not None:
                if not isinstance(wanted, list) or any(w not in STATUSES for w in wanted):
                    raise AccountError("ValidationException", "Invalid RegionOptStatusContains", 400)
            max_results = req.get("MaxResults", 50)
            if not isinstance(max_results, int) or not 1 <= max_results <= 50:
                raise AccountError("ValidationException", "MaxResults must be between 1 and 50", 400)
            start = 0
            if req.get("NextToken"):
                try:
                    start = int(base64.urlsafe_b64decode(req["NextToken"].encode()).decode().split(":")[1])
                except Exception:
                    raise AccountError("ValidationException", "Invalid NextToken", 400)
            rows = [{"RegionName": r, "RegionOptStatus": cfg.status(acct, r)} for r in ALL_REGIONS]
            if wanted:
                rows = [r for r in rows if r["RegionOptStatus"] in wanted]
            page = rows[start:start + max_results]
            out: dict[str, Any] = {"Regions": page}
            if start + max_results < len(rows):
                out["NextToken"] = base64.urlsafe_b64encode(f"regions:{start + max_results}".encode()).decode()
            return _json(out)
        region = req.get("RegionName")
        if region not in ALL_REGIONS:
            raise AccountError("ValidationException", f"Invalid RegionName {region!r}", 400)
        if op == "GetRegionOptStatus":
            return _json({"RegionName": region, "RegionOptStatus": cfg.status(acct, region)})
        if region in DEFAULT_REGIONS:
            raise AccountError("ValidationException", f"{region} is enabled by default and cannot be changed", 400)
        cfg.set_enabled(acct, region, op == "EnableRegion")
        return _json(None)
    except AccountError as e:
        return error_response(info, e.code, e.message, e.status)


def _ec2_opt_in(cfg: RegionConfig, account: str, region: str) -> str:
    if region not in cfg.enabled_for(account):
        return "not-opted-in"  # (for a default region only when configured so, to test "disabled" handling)
    return "opt-in-not-required" if region in DEFAULT_REGIONS else "opted-in"


def describe_regions(info: RequestInfo, cfg: RegionConfig) -> Response | None:
    """ec2:DescribeRegions for the aws partition, consistent with account:ListRegions
    (moto's own answer lists every region, with made-up opt-in statuses)."""
    if not info.region or info.region.startswith(("us-gov-", "cn-", "us-iso", "eusc-")):
        return None
    p = info.params
    all_regions = str(p.get("AllRegions", "false")).lower() == "true"
    names = [v for k, v in sorted(p.items()) if k.startswith("RegionName.")]
    filters: dict[str, list[str]] = {}
    for k, v in p.items():
        m = re.match(r"Filter\.(\d+)\.Name$", k)
        if m:
            filters[v] = [fv for fk, fv in sorted(p.items()) if fk.startswith(f"Filter.{m.group(1)}.Value.")]
    unknown_names = [n for n in names if n not in ALL_REGIONS]
    if unknown_names:
        return error_response(info, "InvalidParameterValue", f"Invalid region names: {unknown_names}", 400)
    rows = []
    for r in ALL_REGIONS:
        status = _ec2_opt_in(cfg, info.account, r)
        if names and r not in names:
            continue
        if not all_regions and not names and status == "not-opted-in":
            continue
        if "region-name" in filters and r not in filters["region-name"]:
            continue
        if "opt-in-status" in filters and status not in filters["opt-in-status"]:
            continue
        rows.append((r, status))
    items = "".join(
        f"<item><regionName>{r}</regionName><regionEndpoint>ec2.{r}.amazonaws.com</regionEndpoint>"
        f"<optInStatus>{s}</optInStatus></item>" for r, s in rows
    )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<DescribeRegionsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
        f"<requestId>{request_id()}</requestId><regionInfo>{items}</regionInfo></DescribeRegionsResponse>"
    ).encode()
    return 200, [("Content-Type", "text/xml;charset=UTF-8"), ("Content-Length", str(len(body)))], body
