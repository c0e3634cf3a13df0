"""Organizations, STS (AssumeRole with ExternalId; web identity is in test_web_identity.py) and regions."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from conftest import EXTERNAL_ID, REGIONS, client


def test_organization_with_ous(emulator, seeded):
    org = client(emulator, "organizations")
    d = org.describe_organization()["Organization"]
    assert d["MasterAccountId"] == seeded["management_account"] == "123456789012"
    accounts = [a for p in org.get_paginator("list_accounts").paginate() for a in p["Accounts"]]
    assert len(accounts) == 4 and all(a["Status"] == "ACTIVE" for a in accounts)
    members = {a["id"] for a in seeded["accounts"]}
    assert members <= {a["Id"] for a in accounts}
    # paging with MaxResults
    page = org.list_accounts(MaxResults=2)
    assert len(page["Accounts"]) == 2 and page.get("NextToken")
    # OU recursion from the root finds every member
    root = seeded["organization"]["root_id"]

    def walk(parent: str) -> set[str]:
        found = {a["Id"] for p in org.get_paginator("list_accounts_for_parent").paginate(ParentId=parent) for a in p["Accounts"]}
        for p in org.get_paginator("list_organizational_units_for_parent").paginate(ParentId=parent):
            for ou in p["OrganizationalUnits"]:
                found |= walk(ou["Id"])
        return found

    assert walk(root) >= members
    workloads = next(o for o in seeded["organization"]["ous"] if o["name"] == "Workloads")
    assert walk(workloads["id"]) == {a["id"] for a in seeded["accounts"] if a["ou_path"].startswith("/Workloads")}
    assert len({a["ou_path"] for a in seeded["accounts"]}) == 3


def test_assume_role_with_external_id(emulator, seeded):
    a = seeded["accounts"][0]
    sts = client(emulator, "sts")
    creds = sts.assume_role(RoleArn=a["read_role_arn"], RoleSessionName="berth", ExternalId=EXTERNAL_ID)["Credentials"]
    ident = client(emulator, "sts", creds=creds).get_caller_identity()
    assert ident["Account"] == a["id"]
    assert ident["Arn"] == f"arn:aws:sts::{a['id']}:assumed-role/BerthReadOnly/berth"
    for bad in ({}, {"ExternalId": "wrong-external-id"}):
        with pytest.raises(ClientError) as e:
            sts.assume_role(RoleArn=a["read_role_arn"], RoleSessionName="berth", **bad)
        assert e.value.response["Error"]["Code"] == "AccessDenied"
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # a member account may not assume another member's read role (trust names the management account)
    with pytest.raises(ClientError) as e:
        client(emulator, "sts", creds=creds).assume_role(
            RoleArn=seeded["accounts"][1]["read_role_arn"], RoleSessionName="x1", ExternalId=EXTERNAL_ID)
    assert e.value.response["Error"]["Code"] == "AccessDenied"


def test_missing_roles_follow_config(emulator, admin):
    sts = client(emulator, "sts")
    arn = "arn:aws:iam::999999999999:role/DoesNotExist"
    assert sts.assume_role(RoleArn=arn, RoleSessionName="x1")["Credentials"]["AccessKeyId"].startswith("ASIA")
    admin.post("/_berth/config", {"trust": {"require_existing_role": True}})
    with pytest.raises(ClientError) as e:
        sts.assume_role(RoleArn=arn, RoleSessionName="x1")
    assert e.value.response["Error"]["Code"] == "AccessDenied"


def test_list_regions_default_and_configured(emulator, admin, seeded, member_creds):
    acct = seeded["accounts"][0]["id"]
    account = client(emulator, "account", creds=member_creds[acct])

    def enabled(c, **kw) -> set[str]:
        out = set()
        for p in c.get_paginator("list_regions").paginate(RegionOptStatusContains=["ENABLED", "ENABLED_BY_DEFAULT"], **kw):
            out |= {r["RegionName"] for r in p["Regions"]}
        return out

    default = enabled(account)
    assert set(REGIONS) <= default and "af-south-1" not in default and len(default) == 17
    everything = [r for p in account.get_paginator("list_regions").paginate() for r in p["Regions"]]
    assert {"RegionName": "af-south-1", "RegionOptStatus": "DISABLED"} in everything
    # per-account configuration
    admin.post("/_berth/regions", {"accounts": {acct: ["us-east-1", "eu-west-1", "af-south-1"]}})
    assert enabled(account) == {"us-east-1", "eu-west-1", "af-south-1"}
    other = seeded["accounts"][1]["id"]
    assert len(enabled(client(emulator, "account", creds=member_creds[other]))) == 17
    # EC2 DescribeRegions agrees
    ec2 = client(emulator, "ec2", "us-east-1", creds=member_creds[acct])
    names = {r["RegionName"]: r["OptInStatus"] for r in ec2.describe_regions()["Regions"]}
    assert names == {"us-east-1": "opt-in-not-required", "eu-west-1": "opt-in-not-required", "af-south-1": "opted-in"}
    assert len(ec2.describe_regions(AllRegions=True)["Regions"]) == 34
    # the management account may ask about a member (AccountId); a member may not ask about another
    mgmt = client(emulator, "account")
    assert enabled(mgmt, AccountId=acct) == {"us-east-1", "eu-west-1", "af-south-1"}
    with pytest.raises(ClientError) as e:
        account.list_regions(AccountId=other)
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    # EnableRegion / GetRegionOptStatus
    account.enable_region(RegionName="me-south-1")
    assert account.get_region_opt_status(RegionName="me-south-1")["RegionOptStatus"] == "ENABLED"
    account.disable_region(RegionName="me-south-1")
    assert account.get_region_opt_status(RegionName="me-south-1")["RegionOptStatus"] == "DISABLED"


def test_admin_health_and_reset_routes(admin):
    h = admin.get("/_berth/health")
    assert h["ok"] and "AWS::ECS::Service" in h["types"]
    cfg = admin.get("/_berth/config")
    assert cfg["list_shapes"]["AWS::S3::Bucket"] == "identifiers"
    assert cfg["list_shapes"]["AWS::EC2::Instance"] == "full"
    status, _ = admin.call("GET", "/_berth/nope")
    assert status == 404
    status, body = admin.call("POST", "/_berth/regions", {"enabled": ["xx-nowhere-1"]})
    assert status == 400 and "unknown regions" in body["error"]
    json.dumps(admin.get("/_berth/regions"))


def test_member_accounts_cannot_list_the_organization(emulator, seeded, member_creds):
    org = client(emulator, "organizations", creds=member_creds[seeded["accounts"][0]["id"]])
    assert org.describe_organization()["Organization"]["MasterAccountId"] == "123456789012"
    with pytest.raises(ClientError) as e:
        org.list_accounts()
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"


def test_sessions_expire(emulator, admin, seeded):
    import time

    admin.post("/_berth/config", {"sts": {"session_seconds": 3}})
    a = seeded["accounts"][1]
    sts = client(emulator, "sts")
    out = sts.assume_role(RoleArn=a["read_role_arn"], RoleSessionName="short", ExternalId=EXTERNAL_ID)
    creds = out["Credentials"]
    left = (creds["Expiration"].timestamp() - time.time())
    assert 0 < left <= 3.5
    cc = client(emulator, "cloudcontrol", "us-east-1", creds=creds)
    cc.list_resources(TypeName="AWS::EC2::VPC")
    time.sleep(max(0.0, creds["Expiration"].timestamp() - time.time()) + 0.2)
    with pytest.raises(ClientError) as e:
        cc.list_resources(TypeName="AWS::EC2::VPC")
    assert e.value.response["Error"]["Code"] == "ExpiredTokenException"
    with pytest.raises(ClientError) as e:
        client(emulator, "sts", creds=creds).get_caller_identity()
    assert e.value.response["Error"]["Code"] == "ExpiredToken"
    # fresh credentials work again
    fresh = sts.assume_role(RoleArn=a["read_role_arn"], RoleSessionName="short", ExternalId=EXTERNAL_ID)["Credentials"]
    client(emulator, "cloudcontrol", "us-east-1", creds=fresh).list_resources(TypeName="AWS::EC2::VPC")
    assert admin.get("/_berth/stats")["totals"]["expired"] >= 2
