"""Cloud Control ListResources / GetResource against the seeded state."""

from __future__ import annotations

import json
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import PER_KIND, REGIONS, client

TYPES = [
    "AWS::S3::Bucket", "AWS::EC2::Instance", "AWS::EC2::SecurityGroup", "AWS::EC2::Subnet", "AWS::EC2::VPC",
    "AWS::ECS::Cluster", "AWS::ECS::TaskDefinition", "AWS::Lambda::Function", "AWS::RDS::DBInstance",
]

# what each GetResource model must carry (CloudFormation schema property names)
GET_KEYS = {
    "AWS::S3::Bucket": {"BucketName", "Arn", "DomainName", "RegionalDomainName", "DualStackDomainName", "WebsiteURL", "Tags"},
    "AWS::EC2::Instance": {"InstanceId", "InstanceType", "ImageId", "SubnetId", "VpcId", "SecurityGroupIds",
                           "PrivateIpAddress", "AvailabilityZone", "State", "Tags"},
    "AWS::EC2::SecurityGroup": {"Id", "GroupId", "GroupName", "GroupDescription", "VpcId", "SecurityGroupIngress",
                                "SecurityGroupEgress", "Tags"},
    "AWS::EC2::Subnet": {"SubnetId", "VpcId", "CidrBlock", "AvailabilityZone", "AvailabilityZoneId", "Tags"},
    "AWS::EC2::VPC": {"VpcId", "CidrBlock", "DefaultSecurityGroup", "DefaultNetworkAcl", "Tags"},
    "AWS::ECS::Cluster": {"ClusterName", "Arn", "ClusterSettings", "Tags"},
    "AWS::ECS::Service": {"ServiceArn", "ServiceName", "Cluster", "DesiredCount", "TaskDefinition", "LaunchType",
                          "NetworkConfiguration", "Tags"},
    "AWS::ECS::TaskDefinition": {"TaskDefinitionArn", "Family", "ContainerDefinitions", "Cpu", "Memory", "NetworkMode", "Tags"},
    "AWS::Lambda::Function": {"FunctionName", "Arn", "Runtime", "MemorySize", "Timeout", "Role", "Handler", "Tags"},
    "AWS::RDS::DBInstance": {"DBInstanceIdentifier", "DBInstanceArn", "Engine", "EngineVersion", "DBInstanceClass",
                             "Endpoint", "AllocatedStorage", "Tags"},
}
LIST_IDENTIFIER_ONLY = {
    "AWS::S3::Bucket": ["BucketName"], "AWS::EC2::SecurityGroup": ["Id"], "AWS::EC2::Subnet": ["SubnetId"],
    "AWS::EC2::VPC": ["VpcId"], "AWS::ECS::Cluster": ["ClusterName"], "AWS::ECS::TaskDefinition": ["TaskDefinitionArn"],
    "AWS::Lambda::Function": ["FunctionName"], "AWS::ECS::Service": ["ServiceArn", "Cluster"],
}


def list_all(cc, type_name: str, **kw) -> list[dict]:
    out = []
    for page in cc.get_paginator("list_resources").paginate(TypeName=type_name, **kw):
        out.extend(page["ResourceDescriptions"])
    return out


def all_buckets(seeded, acct) -> list[str]:
    return sorted(b for r in REGIONS for b in seeded["identifiers"][acct][r]["AWS::S3::Bucket"])


def test_list_matches_seeded_state_everywhere(emulator, seeded, member_creds):
    for a in seeded["accounts"]:
        acct = a["id"]
        for region in REGIONS:
            cc = client(emulator, "cloudcontrol", region, member_creds[acct])
            for t in TYPES:
                got = sorted(d["Identifier"] for d in list_all(cc, t))
                if t == "AWS::S3::Bucket":
                    want = all_buckets(seeded, acct)  # global: every bucket of the account
                else:
                    want = seeded["identifiers"][acct][region][t]
                assert got == want, (acct, region, t)
            # services, per cluster
            got = []
            for cluster in seeded["identifiers"][acct][region]["AWS::ECS::Cluster"]:
                got += [d["Identifier"] for d in list_all(cc, "AWS::ECS::Service", ResourceModel=json.dumps({"Cluster": cluster}))]
            assert sorted(got) == seeded["identifiers"][acct][region]["AWS::ECS::Service"]
            assert len(got) == PER_KIND


def test_seeded_counts_include_created(seeded):
    for a in seeded["accounts"]:
        for r in REGIONS:
            for kind, n in seeded["created"][a["id"]][r].items():
                assert n == PER_KIND
                assert seeded["present"][a["id"]][r][kind] >= n


def test_accounts_are_isolated(emulator, seeded):
    # the management account (static keys) sees none of the members' resources
    cc = client(emulator, "cloudcontrol", "eu-west-1")
    assert list_all(cc, "AWS::Lambda::Function") == []
    assert list_all(cc, "AWS::RDS::DBInstance") == []


def test_list_and_get_shapes(emulator, seeded, member_creds):
    acct = seeded["accounts"][0]["id"]
    region = "eu-west-1"
    cc = client(emulator, "cloudcontrol", region, member_creds[acct])
    for t in TYPES:
        items = list_all(cc, t)
        assert items, t
        for d in items:
            assert isinstance(d["Properties"], str)
            props = json.loads(d["Properties"])
            if t in LIST_IDENTIFIER_ONLY:
                assert list(props) == LIST_IDENTIFIER_ONLY[t], (t, props)
            else:  # EC2::Instance and RDS::DBInstance list handlers return the full model
                assert GET_KEYS[t] <= set(props), (t, set(props))
        ident = next(d["Identifier"] for d in items if t != "AWS::S3::Bucket" or f"-{region}-" in d["Identifier"])
        got = cc.get_resource(TypeName=t, Identifier=ident)
        assert got["TypeName"] == t
        desc = got["ResourceDescription"]
        assert desc["Identifier"] == ident
        assert isinstance(desc["Properties"], str)
        props = json.loads(desc["Properties"])
        assert GET_KEYS[t] <= set(props), (t, GET_KEYS[t] - set(props))
        for tag in props["Tags"]:
            assert set(tag) == {"Key", "Value"}


def test_get_models_follow_the_schemas(emulator, seeded, member_creds):
    acct = seeded["accounts"][1]["id"]
    region = "us-east-1"
    cc = client(emulator, "cloudcontrol", region, member_creds[acct])

    def get(t, ident):
        return json.loads(cc.get_resource(TypeName=t, Identifier=ident)["ResourceDescription"]["Properties"])

    bucket = next(b for b in seeded["identifiers"][acct][region]["AWS::S3::Bucket"])
    b = get("AWS::S3::Bucket", bucket)
    assert b["Arn"] == f"arn:aws:s3:::{bucket}"
    assert b["RegionalDomainName"] == f"{bucket}.s3.us-east-1.amazonaws.com"
    tags = {t["Key"]: t["Value"] for t in b["Tags"]}
    assert tags["名前"].startswith("テスト-") and tags["owner"] in {"Zoë Ångström", "Jürgen Müller", "Ana Núñez", "Søren Kierkegård"}

    inst_id = seeded["identifiers"][acct][region]["AWS::EC2::Instance"][0]
    i = get("AWS::EC2::Instance", inst_id)
    assert i["InstanceId"] == inst_id and i["State"]["Name"] == "running"
    sub = get("AWS::EC2::Subnet", i["SubnetId"])
    assert sub["VpcId"] == i["VpcId"]
    vpc = get("AWS::EC2::VPC", i["VpcId"])
    assert vpc["CidrBlock"].startswith("10.")
    sg = get("AWS::EC2::SecurityGroup", i["SecurityGroupIds"][0])
    assert sg["VpcId"] == i["VpcId"]
    https = [r for r in sg["SecurityGroupIngress"] if r.get("FromPort") == 443]
    assert https == [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0", "Description": "HTTPS from anywhere"}]
    assert {"IpProtocol": "-1", "CidrIp": "0.0.0.0/0"} in sg["SecurityGroupEgress"]
    # a rule referencing another security group (second SG of a VPC)
    all_sgs = [get("AWS::EC2::SecurityGroup", g) for g in seeded["identifiers"][acct][region]["AWS::EC2::SecurityGroup"]]
    assert any(r.get("SourceSecurityGroupId") for g in all_sgs for r in g["SecurityGroupIngress"]) or PER_KIND <= 3

    svc_ident = seeded["identifiers"][acct][region]["AWS::ECS::Service"][0]
    s = get("AWS::ECS::Service", svc_ident)
    arn, cluster = svc_ident.split("|")
    assert s["ServiceArn"] == arn and s["Cluster"] == cluster and s["LaunchType"] == "FARGATE"
    assert s["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"]
    td = get("AWS::ECS::TaskDefinition", s["TaskDefinition"])
    assert td["ContainerDefinitions"][0]["Name"] == "app"
    assert td["ContainerDefinitions"][0]["PortMappings"][0]["ContainerPort"] == 8080
    c = get("AWS::ECS::Cluster", cluster)
    assert c["Arn"].endswith(f":cluster/{cluster}")

    fn = get("AWS::Lambda::Function", "fn-000")
    assert fn["Runtime"] == "python3.12" and fn["MemorySize"] == 128 and fn["Timeout"] == 3
    assert fn["Arn"] == f"arn:aws:lambda:{region}:{acct}:function:fn-000"

    db = get("AWS::RDS::DBInstance", "db-000")
    assert db["Engine"] == "postgres" and db["DBInstanceClass"] == "db.t3.micro"
    assert db["DBInstanceArn"] == f"arn:aws:rds:{region}:{acct}:db:db-000"
    assert db["Endpoint"]["Address"].startswith("db-000.") and db["Endpoint"]["Port"] == "5432"


def test_paging_with_max_results(emulator, seeded, member_creds):
    acct = seeded["accounts"][0]["id"]
    cc = client(emulator, "cloudcontrol", "us-east-1", member_creds[acct])
    want = seeded["identifiers"][acct]["us-east-1"]["AWS::EC2::SecurityGroup"]
    assert len(want) > 4
    seen, token, pages = [], None, 0
    while True:
        kw = {"TypeName": "AWS::EC2::SecurityGroup", "MaxResults": 2}
        if token:
            kw["NextToken"] = token
        page = cc.list_resources(**kw)
        pages += 1
        assert len(page["ResourceDescriptions"]) <= 2
        seen += [d["Identifier"] for d in page["ResourceDescriptions"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == want  # ordered, no duplicates, nothing missed
    assert pages == (len(want) + 1) // 2
    # the same token gives the same page again (stable, replayable)
    first = cc.list_resources(TypeName="AWS::EC2::SecurityGroup", MaxResults=2)
    again1 = cc.list_resources(TypeName="AWS::EC2::SecurityGroup", MaxResults=2, NextToken=first["NextToken"])
    again2 = cc.list_resources(TypeName="AWS::EC2::SecurityGroup", MaxResults=2, NextToken=first["NextToken"])
    assert again1["ResourceDescriptions"] == again2["ResourceDescriptions"]
    with pytest.raises(ClientError) as e:
        cc.list_resources(TypeName="AWS::EC2::SecurityGroup", NextToken="bm90LWEtdG9rZW4")
    assert e.value.response["Error"]["Code"] == "InvalidRequestException"
    with pytest.raises(ClientError) as e:  # a token from another type
        cc.list_resources(TypeName="AWS::EC2::VPC", NextToken=first["NextToken"])
    assert e.value.response["Error"]["Code"] == "InvalidRequestException"


def test_default_page_size_is_configurable(emulator, admin, seeded, member_creds):
    acct = seeded["accounts"][0]["id"]
    cc = client(emulator, "cloudcontrol", "us-east-1", member_creds[acct])
    admin.post("/_berth/config", {"default_page_size": 1})
    page = cc.list_resources(TypeName="AWS::Lambda::Function")
    assert len(page["ResourceDescriptions"]) == 1 and page["NextToken"]
    assert len(list_all(cc, "AWS::Lambda::Function")) == PER_KIND


def test_empty_pages_quirk(emulator, admin, seeded, member_creds):
    """Cloud Control may answer an empty page that still carries a NextToken; clients must keep going."""
    acct = seeded["accounts"][2]["id"]
    cc = client(emulator, "cloudcontrol", "us-east-1", member_creds[acct])
    want = sorted(d["Identifier"] for d in list_all(cc, "AWS::Lambda::Function", MaxResults=2))
    admin.post("/_berth/config", {"empty_pages": True})
    first = cc.list_resources(TypeName="AWS::Lambda::Function", MaxResults=2)
    assert first["ResourceDescriptions"] == [] and first["NextToken"]
    pages = list(cc.get_paginator("list_resources").paginate(TypeName="AWS::Lambda::Function", MaxResults=2))
    assert sorted(d["Identifier"] for p in pages for d in p["ResourceDescriptions"]) == want
    assert sum(1 for p in pages if not p["ResourceDescriptions"]) >= 2


def test_ecs_service_requires_cluster_model(emulator, seeded, member_creds):
    acct = seeded["accounts"][0]["id"]
    cc = client(emulator, "cloudcontrol", "eu-west-1", member_creds[acct])
    with pytest.raises(ClientError) as e:
        cc.list_resources(TypeName="AWS::ECS::Service")
    assert e.value.response["Error"]["Code"] == "InvalidRequestException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as e:
        cc.list_resources(TypeName="AWS::ECS::Service", ResourceModel=json.dumps({"ServiceName": "x"}))
    assert e.value.response["Error"]["Code"] == "InvalidRequestException"
    # by cluster ARN works too; the identifier echoes what was given
    cluster = seeded["identifiers"][acct]["eu-west-1"]["AWS::ECS::Cluster"][0]
    arn = json.loads(cc.get_resource(TypeName="AWS::ECS::Cluster", Identifier=cluster)["ResourceDescription"]["Properties"])["Arn"]
    items = list_all(cc, "AWS::ECS::Service", ResourceModel=json.dumps({"Cluster": arn}))
    assert items and all(d["Identifier"].endswith("|" + arn) for d in items)
    assert json.loads(items[0]["Properties"]) == dict(zip(["ServiceArn", "Cluster"], items[0]["Identifier"].split("|")))
    got = cc.get_resource(TypeName="AWS::ECS::Service", Identifier=items[0]["Identifier"])
    assert json.loads(got["ResourceDescription"]["Properties"])["Cluster"] == arn
    with pytest.raises(ClientError) as e:
        cc.list_resources(TypeName="AWS::ECS::Service", ResourceModel=json.dumps({"Cluster": "no-such-cluster"}))
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_errors(emulator, admin, seeded, member_creds):
    acct = seeded["accounts"][0]["id"]
    cc = client(emulator, "cloudcontrol", "eu-west-1", member_creds[acct])
    cases = [
        (lambda: cc.list_resources(TypeName="AWS::Nope::Thing"), "TypeNotFoundException"),
        (lambda: cc.get_resource(TypeName="AWS::Nope::Thing", Identifier="x"), "TypeNotFoundException"),
        (lambda: cc.get_resource(TypeName="AWS::Lambda::Function", Identifier="fn-does-not-exist"), "ResourceNotFoundException"),
        (lambda: cc.get_resource(TypeName="AWS::EC2::Instance", Identifier="i-0000000000000000"), "ResourceNotFoundException"),
        (lambda: cc.list_resources(TypeName="AWS::CloudFormation::WaitConditionHandle"), "UnsupportedActionException"),
        (lambda: cc.list_resources(TypeName="AWS::S3::Bucket", MaxResults=101), "ValidationException"),
        (lambda: cc.create_resource(TypeName="AWS::S3::Bucket", DesiredState="{}"), "UnsupportedActionException"),
    ]
    for call, code in cases:
        with pytest.raises(ClientError) as e:
            call()
        assert e.value.response["Error"]["Code"] == code
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # a bucket is read in its home region only (Berth must look up the location and retry there)
    us_bucket = seeded["identifiers"][acct]["us-east-1"]["AWS::S3::Bucket"][0]
    with pytest.raises(ClientError) as e:
        cc.get_resource(TypeName="AWS::S3::Bucket", Identifier=us_bucket)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    admin.post("/_berth/config", {"s3_cross_region_get": "ok"})
    assert cc.get_resource(TypeName="AWS::S3::Bucket", Identifier=us_bucket)["ResourceDescription"]["Identifier"] == us_bucket
    # a type configured as existing-but-empty
    admin.post("/_berth/config", {"empty_types": ["AWS::SQS::Queue"]})
    assert cc.list_resources(TypeName="AWS::SQS::Queue")["ResourceDescriptions"] == []
    # list shapes can be switched per type
    admin.post("/_berth/config", {"list_shapes": {"AWS::EC2::VPC": "full", "AWS::EC2::Instance": "identifiers"}})
    vpc = list_all(cc, "AWS::EC2::VPC")[0]
    assert "CidrBlock" in json.loads(vpc["Properties"])
    inst = list_all(cc, "AWS::EC2::Instance")[0]
    assert list(json.loads(inst["Properties"])) == ["InstanceId"]


def test_wire_format_awsjson10(emulator):
    """What a Smithy awsJson1_0 client (e.g. the Rust SDK) sees on the wire."""
    def post(target: str, body: dict) -> tuple[int, dict, dict]:
        req = urllib.request.Request(
            emulator + "/", data=json.dumps(body).encode(), method="POST",
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": target,
                "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/eu-west-1/cloudcontrolapi/aws4_request, "
                                 "SignedHeaders=host;x-amz-date;x-amz-target, Signature=0",
                "X-Amz-Date": "20260101T000000Z",
            })
        try:
            with urllib.request.urlopen(req) as r:
                return r.status, dict(r.headers), json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), json.loads(e.read())

    import urllib.error

    status, headers, body = post("CloudApiService.ListResources", {"TypeName": "AWS::EC2::VPC", "MaxResults": 1})
    assert status == 200
    assert headers["Content-Type"] == "application/x-amz-json-1.0"
    assert set(body) == {"TypeName", "ResourceDescriptions"}  # no null NextToken: only one default VPC
    assert isinstance(body["ResourceDescriptions"][0]["Properties"], str)
    status, headers, body = post("CloudApiService.ListResources", {"TypeName": "AWS::Foo::Bar"})
    assert status == 400
    assert body == {"__type": "TypeNotFoundException", "Message": "The type 'AWS::Foo::Bar' cannot be found."}
    assert headers["Content-Type"] == "application/x-amz-json-1.0"
