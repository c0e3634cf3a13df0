"""Fault injection (throttling, rate limits, latency, AccessDenied, 5xx) and stats."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

from conftest import client


def cc_calls(cc, n: int, type_name: str = "AWS::EC2::VPC") -> list[str]:
    """n ListResources calls; returns "ok" or the error code of each."""
    out = []
    for _ in range(n):
        try:
            cc.list_resources(TypeName=type_name)
            out.append("ok")
        except ClientError as e:
            out.append(e.response["Error"]["Code"])
    return out


def test_throttle_fraction_is_seeded_and_reproducible(emulator, admin):
    cc = client(emulator, "cloudcontrol", "us-east-1")
    cfg = {"seed": 1234, "rules": [{"api": "cloudcontrol:ListResources", "throttle": 0.5}]}
    admin.post("/_berth/faults", cfg)
    first = cc_calls(cc, 120)
    admin.post("/_berth/faults", cfg)  # re-posting resets the per-scope call counters
    second = cc_calls(cc, 120)
    assert first == second
    throttled = first.count("ThrottlingException")
    assert set(first) <= {"ok", "ThrottlingException"}
    assert 40 <= throttled <= 80, throttled
    admin.post("/_berth/faults", dict(cfg, seed=99))
    assert cc_calls(cc, 120) != first
    # other APIs are untouched
    client(emulator, "sts").get_caller_identity()
    # GetResource is a different API: not throttled by this rule
    admin.post("/_berth/faults", {"seed": 1, "rules": [{"api": "cloudcontrol:GetResource", "throttle": 1.0}]})
    assert cc_calls(cc, 5) == ["ok"] * 5
    # rules may also name the API by its X-Amz-Target
    admin.post("/_berth/faults", {"rules": [{"api": "CloudApiService.ListResources", "throttle": 1.0}]})
    assert cc_calls(cc, 2) == ["ThrottlingException"] * 2
    admin.post("/_berth/faults", {"rules": [{"target": "CloudApiService.Get*", "throttle": 1.0}]})
    assert cc_calls(cc, 2) == ["ok"] * 2


def test_throttling_error_shape_per_protocol(emulator, admin):
    admin.post("/_berth/faults", {"rules": [{"api": "*", "throttle": 1.0, "account": "123456789012"}]})
    expect = [
        (lambda: client(emulator, "cloudcontrol").list_resources(TypeName="AWS::EC2::VPC"), "ThrottlingException", 400),
        (lambda: client(emulator, "sts").get_caller_identity(), "Throttling", 400),
        (lambda: client(emulator, "ec2").describe_vpcs(), "RequestLimitExceeded", 503),
        (lambda: client(emulator, "organizations").describe_organization(), "TooManyRequestsException", 400),
        (lambda: client(emulator, "ecs").list_clusters(), "ThrottlingException", 400),
        (lambda: client(emulator, "lambda").list_functions(), "TooManyRequestsException", 429),
        (lambda: client(emulator, "rds").describe_db_instances(), "Throttling", 400),
        (lambda: client(emulator, "s3").list_buckets(), "SlowDown", 503),
        (lambda: client(emulator, "account").list_regions(), "TooManyRequestsException", 429),
    ]
    for call, code, status in expect:
        with pytest.raises(ClientError) as e:
            call()
        assert e.value.response["Error"]["Code"] == code
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_rate_limit_token_bucket(emulator, admin):
    cc = client(emulator, "cloudcontrol", "us-east-1")
    admin.post("/_berth/faults", {"rules": [{"api": "cloudcontrol:*", "rate_limit": 10, "burst": 5}]})
    t0 = time.monotonic()
    results: list[str] = []
    while time.monotonic() - t0 < 1.5:  # hammer for 1.5 s
        results += cc_calls(cc, 1)
    elapsed = time.monotonic() - t0
    ok = results.count("ok")
    assert set(results) <= {"ok", "ThrottlingException"}
    assert results[:5] == ["ok"] * 5  # the burst
    allowed = 5 + 10 * elapsed  # burst + rate x time
    assert ok <= allowed + 1, (ok, allowed, len(results))
    if len(results) >= 2 * allowed:  # the client was fast enough to exceed the rate (always, unless the box is very busy)
        assert "ThrottlingException" in results
        assert ok >= allowed * 0.8, (ok, allowed, len(results))
    # the bucket is per account + region: another region has its own
    assert cc_calls(client(emulator, "cloudcontrol", "eu-west-1"), 5) == ["ok"] * 5
    # a client pacing below the rate is never throttled
    admin.post("/_berth/faults", {"rules": [{"api": "cloudcontrol:*", "rate_limit": 20, "burst": 1}]})
    paced = []
    for _ in range(8):
        paced += cc_calls(cc, 1)
        time.sleep(0.07)
    assert paced == ["ok"] * 8
    stats = admin.get("/_berth/stats")
    assert stats["apis"]["cloudcontrol:ListResources"]["rate_limited"] >= 1


def test_latency(emulator, admin):
    cc = client(emulator, "cloudcontrol", "us-east-1")
    admin.delete("/_berth/stats")
    admin.post("/_berth/faults", {"rules": [{"api": "cloudcontrol:ListResources", "latency_ms": 300},
                                            {"api": "cloudcontrol:*", "latency_ms": 50}]})
    t0 = time.monotonic()
    cc.list_resources(TypeName="AWS::EC2::VPC")
    assert time.monotonic() - t0 >= 0.35  # latencies of matching rules add up
    client(emulator, "sts").get_caller_identity()
    s = admin.get("/_berth/stats")["apis"]
    assert s["cloudcontrol:ListResources"]["injected_latency_ms"] == 350
    assert s["sts:GetCallerIdentity"]["injected_latency_ms"] == 0


def test_access_denied_for_an_account(emulator, admin, seeded, member_creds):
    a0, a1 = seeded["accounts"][0]["id"], seeded["accounts"][1]["id"]
    admin.post("/_berth/faults", {"rules": [{"account": a0, "access_denied": True}]})
    for region in ("us-east-1", "eu-west-1"):
        with pytest.raises(ClientError) as e:
            client(emulator, "cloudcontrol", region, member_creds[a0]).list_resources(TypeName="AWS::EC2::VPC")
        assert e.value.response["Error"]["Code"] == "AccessDeniedException"
        with pytest.raises(ClientError) as e:
            client(emulator, "ec2", region, member_creds[a0]).describe_vpcs()
        assert e.value.response["Error"]["Code"] == "UnauthorizedOperation"
    client(emulator, "cloudcontrol", "us-east-1", member_creds[a1]).list_resources(TypeName="AWS::EC2::VPC")


def test_access_denied_for_one_region_only(emulator, admin, seeded, member_creds):
    a0 = seeded["accounts"][0]["id"]
    admin.post("/_berth/faults", {"rules": [{"api": "cloudcontrol:*", "account": a0, "region": "eu-west-1",
                                             "access_denied": True}]})
    with pytest.raises(ClientError) as e:
        client(emulator, "cloudcontrol", "eu-west-1", member_creds[a0]).list_resources(TypeName="AWS::EC2::VPC")
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    ok = client(emulator, "cloudcontrol", "us-east-1", member_creds[a0]).list_resources(TypeName="AWS::EC2::VPC")
    assert ok["ResourceDescriptions"]
    stats = admin.get("/_berth/stats")
    assert stats["scopes"][f"{a0}/eu-west-1"]["cloudcontrol:ListResources"]["denied"] >= 1


def test_deny_assume_role_into_an_account(emulator, admin, seeded):
    a = seeded["accounts"][2]
    admin.post("/_berth/faults", {"rules": [{"api": "sts:AssumeRole", "role_arn": f"arn:aws:iam::{a['id']}:role/*",
                                             "access_denied": True}]})
    with pytest.raises(ClientError) as e:
        client(emulator, "sts").assume_role(RoleArn=a["read_role_arn"], RoleSessionName="x1", ExternalId=a["external_id"])
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    other = seeded["accounts"][0]
    client(emulator, "sts").assume_role(RoleArn=other["read_role_arn"], RoleSessionName="x1", ExternalId=other["external_id"])


def test_5xx(emulator, admin):
    admin.post("/_berth/faults", {"rules": [{"api": "cloudcontrol:GetResource", "error_5xx": True, "status": 503}]})
    cc = client(emulator, "cloudcontrol", "us-east-1")
    with pytest.raises(ClientError) as e:
        cc.get_resource(TypeName="AWS::EC2::VPC", Identifier="vpc-x")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    admin.post("/_berth/faults", {"rules": [{"api": "ec2:*", "error_5xx": 1.0, "max_faults": 2}]})
    ec2 = client(emulator, "ec2", "us-east-1")
    for _ in range(2):
        with pytest.raises(ClientError) as e:
            ec2.describe_vpcs()
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert e.value.response["Error"]["Code"] == "InternalError"
    ec2.describe_vpcs()  # max_faults reached
    assert admin.get("/_berth/faults")["rules"][0]["_faults_injected"] == 2


def test_sdk_retries_through_throttling(emulator, admin):
    """A client with standard retries gets the full answer through 50% throttling."""
    from botocore.config import Config

    cc = client(emulator, "cloudcontrol", "us-east-1",
                config=Config(retries={"max_attempts": 10, "mode": "standard"}))
    want = [d["Identifier"] for d in cc.list_resources(TypeName="AWS::EC2::Subnet")["ResourceDescriptions"]]
    admin.post("/_berth/faults", {"seed": 5, "rules": [{"api": "cloudcontrol:*", "throttle": 0.5}]})
    got = [d["Identifier"] for d in cc.list_resources(TypeName="AWS::EC2::Subnet")["ResourceDescriptions"]]
    assert got == want


def test_stats(emulator, admin):
    admin.delete("/_berth/stats")
    admin.post("/_berth/faults", {"seed": 3, "rules": [{"api": "cloudcontrol:ListResources", "throttle": 1.0, "max_faults": 3}]})
    cc = client(emulator, "cloudcontrol", "eu-west-1")
    res = cc_calls(cc, 5)
    assert res == ["ThrottlingException"] * 3 + ["ok"] * 2
    client(emulator, "sts").get_caller_identity()
    s = admin.get("/_berth/stats")
    e = s["apis"]["cloudcontrol:ListResources"]
    assert (e["calls"], e["ok"], e["throttled"], e["errors"]) == (5, 2, 3, 3)
    assert s["apis"]["sts:GetCallerIdentity"]["calls"] == 1
    assert s["scopes"]["123456789012/eu-west-1"]["cloudcontrol:ListResources"]["throttled"] == 3
    assert s["totals"]["calls"] == s["total"] == 6


def test_bad_fault_config_is_rejected(admin):
    for bad in ({"rules": [{"throttle": 2}]}, {"rules": [{"bogus": 1}]}, {"rules": "x"},
                {"rules": [{"rate_limit": 0}]}, {"rules": [{"error_5xx": 1, "status": 404}]}):
        status, body = admin.call("POST", "/_berth/faults", bad)
        assert status == 400 and "error" in body
