"""Seeds a running emulator with an Organization and realistic resources.

python -m berth_aws_emulator.seed --endpoint http://127.0.0.1:PORT \
    --accounts 3 --regions us-east-1,eu-west-1 --per-kind 20 [--ous]

* Organizations: CreateOrganization (management account = the static-key
  caller, 123456789012, or `--management-account ID` for a separate
  Organization, e.g. a second customer), N member accounts via CreateAccount (moto creates
  `OrganizationAccountAccessRole` in each, trusting the management account),
  optionally placed in OUs (Workloads/Prod, Workloads/Dev, Sandbox).
* IAM: in each member a read role (`BerthReadOnly`) whose trust policy
  requires an ExternalId; in the management account an org role
  (`BerthOrgReader`). The emulator enforces ExternalId conditions.
* Per member account x region, reached the way real multi-account access
  works (STS AssumeRole into the member's OrganizationAccountAccessRole):
  VPCs, subnets, security groups (with rules), EC2 instances in them, ECS
  clusters + task definitions + services, Lambda functions, RDS instances,
  S3 buckets (located in that region) -- `--per-kind` of each, tagged
  (with unicode tags).

Prints a JSON summary on stdout: what was created and what discovery should
find (`present`, read back through the native APIs, so it includes e.g. each
region's default VPC, subnets and security groups), with identifiers in
Cloud Control form.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from botocore.config import Config

KINDS = [
    "AWS::S3::Bucket",
    "AWS::EC2::VPC",
    "AWS::EC2::Subnet",
    "AWS::EC2::SecurityGroup",
    "AWS::EC2::Instance",
    "AWS::ECS::Cluster",
    "AWS::ECS::TaskDefinition",
    "AWS::ECS::Service",
    "AWS::Lambda::Function",
    "AWS::RDS::DBInstance",
]
MGMT_KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
AMI = "ami-1e749f67"  # in moto's bundled AMI list (ubuntu), valid in every region
ENVS = ["prod", "dev", "staging"]
OWNERS = ["Zoë Ångström", "Jürgen Müller", "Ana Núñez", "Søren Kierkegård"]


def as_account(account: str):
    """A botocore hook: the emulator attributes the request to `account` (header `x-moto-account-id`)."""

    def add_header(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = account

    return add_header


class Seeder:
    def __init__(self, endpoint: str, regions: list[str], per_kind: int, external_id: str,
                 read_role: str, org_role: str, run_id: str, workers: int, management_account: str | None = None):
        self.endpoint = endpoint
        self.management_account = management_account
        self.regions = regions
        self.n = per_kind
        self.external_id = external_id
        self.read_role = read_role
        self.org_role = org_role
        self.run_id = run_id
        self.workers = workers
        self.cfg = Config(retries={"max_attempts": 8, "mode": "standard"}, max_pool_connections=32,
                          connect_timeout=10, read_timeout=120)
        self.created: dict[str, dict[str, dict[str, int]]] = {}

    # ------------------------------------------------------------------ clients

    def client(self, service: str, region: str = "us-east-1", creds: dict[str, str] | None = None):
        kw: dict[str, Any] = dict(region_name=region, endpoint_url=self.endpoint, config=self.cfg)
        if creds:
            kw.update(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                      aws_session_token=creds["SessionToken"])
        else:
            kw.update(MGMT_KEYS)
        c = boto3.client(service, **kw)
        if not creds and self.management_account:
            # static keys belong to 123456789012; the header names another account (as moto reads it)
            c.meta.events.register("before-sign.*.*", as_account(self.management_account))
        return c

    def assume(self, role_arn: str, session: str, external_id: str | None = None) -> dict[str, str]:
        kw: dict[str, Any] = dict(RoleArn=role_arn, RoleSessionName=session, DurationSeconds=3600)
        if external_id:
            kw["ExternalId"] = external_id
        return self.client("sts").assume_role(**kw)["Credentials"]

    def tags(self, kind: str, i: int) -> list[dict[str, str]]:
        return [
            {"Key": "Name", "Value": f"{kind}-{i:03d}"},
            {"Key": "env", "Value": ENVS[i % len(ENVS)]},
            {"Key": "owner", "Value": OWNERS[i % len(OWNERS)]},
            {"Key": "名前", "Value": f"テスト-{i} ✓"},
            {"Key": "berth:seed", "Value": self.run_id},
        ]

    def count(self, acct: str, region: str, kind: str, k: int = 1) -> None:
        d = self.created.setdefault(acct, {}).setdefault(region, {})
        d[kind] = d.get(kind, 0) + k

    # ------------------------------------------------------------------ organization

    def organization(self, n_accounts: int, with_ous: bool) -> dict[str, Any]:
        org = self.client("organizations")
        try:
            o = org.create_organization(FeatureSet="ALL")["Organization"]
        except org.exceptions.AlreadyInOrganizationException:
            o = org.describe_organization()["Organization"]
        root_id = org.list_roots()["Roots"][0]["Id"]
        ous: list[dict[str, str]] = []
        leaves: list[dict[str, str]] = []
        if with_ous:
            def mk(parent: str, name: str, path: str) -> dict[str, str]:
                ou = org.create_organizational_unit(ParentId=parent, Name=name)["OrganizationalUnit"]
                rec = {"id": ou["Id"], "name": name, "parent_id": parent, "path": path}
                ous.append(rec)
                return rec

            workloads = mk(root_id, "Workloads", "/Workloads")
            leaves = [mk(workloads["id"], "Prod", "/Workloads/Prod"), mk(workloads["id"], "Dev", "/Workloads/Dev"),
                      mk(root_id, "Sandbox", "/Sandbox")]
        accounts = []
        for i in range(n_accounts):
            st = org.create_account(Email=f"member-{self.run_id}-{i}@example.com", AccountName=f"Member {i}")["CreateAccountStatus"]
            while st["State"] == "IN_PROGRESS":
                time.sleep(0.2)
                st = org.describe_create_account_status(CreateAccountRequestId=st["Id"])["CreateAccountStatus"]
            if st["State"] != "SUCCEEDED":
                raise RuntimeError(f"CreateAccount failed: {st}")
            acct = st["AccountId"]
            rec: dict[str, Any] = {"id": acct, "name": f"Member {i}", "email": f"member-{self.run_id}-{i}@example.com",
                                   "parent_id": root_id, "ou_path": "/"}
            if leaves:
                leaf = leaves[i % len(leaves)]
                org.move_account(AccountId=acct, SourceParentId=root_id, DestinationParentId=leaf["id"])
                rec["parent_id"], rec["ou_path"] = leaf["id"], leaf["path"]
            accounts.append(rec)
        mgmt = o["MasterAccountId"]
        # the org role Berth assumes first (e.g. after web identity) to list accounts
        iam = self.client("iam")
        org_role_arn = self._ensure_role(iam, self.org_role, {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{mgmt}:root"}, "Action": "sts:AssumeRole"}],
        })
        return {"id": o["Id"], "arn": o["Arn"], "management_account": mgmt, "root_id": root_id, "ous": ous,
                "accounts": accounts, "org_role_arn": org_role_arn}

    @staticmethod
    def _ensure_role(iam, name: str, trust: dict[str, Any]) -> str:
        try:
            return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust),
                                   Description="created by the Berth emulator seed")["Role"]["Arn"]
        except iam.exceptions.EntityAlreadyExistsException:
            return iam.get_role(RoleName=name)["Role"]["Arn"]

    def prepare_account(self, mgmt: str, acct: dict[str, Any]) -> dict[str, str]:
        creds = self.assume(f"arn:aws:iam::{acct['id']}:role/OrganizationAccountAccessRole", "berth-seed")
        iam = self.client("iam", creds=creds)
        acct["org_access_role_arn"] = f"arn:aws:iam::{acct['id']}:role/OrganizationAccountAccessRole"
        acct["read_role_arn"] = self._ensure_role(iam, self.read_role, {
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{mgmt}:root"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": self.external_id}},
            }],
        })
        acct["external_id"] = self.external_id
        acct["lambda_role_arn"] = self._ensure_role(iam, "berth-lambda-exec", {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
        })
        return creds

    # ------------------------------------------------------------------ resources

    def seed_scope(self, acct: dict[str, Any], region: str, creds: dict[str, str], kinds: set[str]) -> None:
        a, n = acct["id"], self.n
        if "AWS::S3::Bucket" in kinds:
            s3 = self.client("s3", region, creds)
            for i in range(n):
                name = f"berth-{a}-{region}-{i:03d}"
                kw: dict[str, Any] = {"Bucket": name}
                if region != "us-east-1":
                    kw["CreateBucketConfiguration"] = {"LocationConstraint": region}
                s3.create_bucket(**kw)
                s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": self.tags("bucket", i)})
                if i % 3 == 0:
                    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
                self.count(a, region, "AWS::S3::Bucket")

        ec2 = self.client("ec2", region, creds)
        vpcs: list[str] = []
        subnets: list[tuple[str, str]] = []  # (subnet id, vpc id)
        sgs: list[tuple[str, str]] = []  # (sg id, vpc id)
        need_net = kinds & {"AWS::EC2::VPC", "AWS::EC2::Subnet", "AWS::EC2::SecurityGroup", "AWS::EC2::Instance", "AWS::ECS::Service"}
        if need_net:
            for i in range(n):
                v = ec2.create_vpc(CidrBlock=f"10.{i % 250}.0.0/16", TagSpecifications=[
                    {"ResourceType": "vpc", "Tags": self.tags("vpc", i)}])["Vpc"]["VpcId"]
                vpcs.append(v)
                self.count(a, region, "AWS::EC2::VPC")
            for j in range(n):
                vi = j % len(vpcs)
                s = ec2.create_subnet(VpcId=vpcs[vi], CidrBlock=f"10.{vi % 250}.{j // len(vpcs)}.0/24",
                                      AvailabilityZone=region + "abc"[j % 3],
                                      TagSpecifications=[{"ResourceType": "subnet", "Tags": self.tags("subnet", j)}])["Subnet"]["SubnetId"]
                subnets.append((s, vpcs[vi]))
                self.count(a, region, "AWS::EC2::Subnet")
            for j in range(n):
                vi = j % len(vpcs)
                g = ec2.create_security_group(GroupName=f"berth-sg-{j:03d}", Description=f"Berth seed SG {j}",
                                              VpcId=vpcs[vi], TagSpecifications=[
                                                  {"ResourceType": "security-group", "Tags": self.tags("sg", j)}])["GroupId"]
                perms: list[dict[str, Any]] = [
                    {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
                     "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "HTTPS from anywhere"}]},
                    {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
                ]
                same_vpc = [sid for sid, vid in sgs if vid == vpcs[vi]]
                if same_vpc:
                    perms.append({"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
                                  "UserIdGroupPairs": [{"GroupId": same_vpc[-1], "Description": "from peer SG"}]})
                ec2.authorize_security_group_ingress(GroupId=g, IpPermissions=perms)
                sgs.append((g, vpcs[vi]))
                self.count(a, region, "AWS::EC2::SecurityGroup")
        if "AWS::EC2::Instance" in kinds:
            types = ["t3.micro", "t3.small", "m5.large"]
            for j in range(n):
                sub, vpc = subnets[j % len(subnets)]
                sg = next((g for g, v in sgs if v == vpc), None)
                kw = dict(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType=types[j % len(types)], SubnetId=sub,
                          TagSpecifications=[{"ResourceType": "instance", "Tags": self.tags("instance", j)}])
                if sg:
                    kw["SecurityGroupIds"] = [sg]
                ec2.run_instances(**kw)
                self.count(a, region, "AWS::EC2::Instance")

        if kinds & {"AWS::ECS::Cluster", "AWS::ECS::TaskDefinition", "AWS::ECS::Service"}:
            ecs = self.client("ecs", region, creds)
            clusters, tds = [], []
            for i in range(n):
                c = ecs.create_cluster(clusterName=f"cluster-{i:03d}",
                                       tags=[{"key": t["Key"], "value": t["Value"]} for t in self.tags("cluster", i)],
                                       settings=[{"name": "containerInsights", "value": "enabled" if i % 2 else "disabled"}])["cluster"]
                clusters.append(c["clusterName"])
                self.count(a, region, "AWS::ECS::Cluster")
            for i in range(n):
                td = ecs.register_task_definition(
                    family=f"app-{i:03d}", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
                    cpu="256", memory="512",
                    containerDefinitions=[{
                        "name": "app", "image": f"public.ecr.aws/nginx/nginx:1.{25 + i % 3}", "essential": True,
                        "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
                        "environment": [{"name": "GREETING", "value": "grüß dich"}],
                    }],
                    tags=[{"key": t["Key"], "value": t["Value"]} for t in self.tags("taskdef", i)],
                )["taskDefinition"]
                tds.append(td["taskDefinitionArn"])
                self.count(a, region, "AWS::ECS::TaskDefinition")
            if "AWS::ECS::Service" in kinds and clusters and tds:
                with_services = max(1, len(clusters) // 2)  # the other half of the clusters stays empty
                for j in range(n):
                    net: dict[str, Any] = {}
                    if subnets:
                        sub, vpc = subnets[j % len(subnets)]
                        sg = next((g for g, v in sgs if v == vpc), None)
                        net = {"awsvpcConfiguration": {"subnets": [sub], "securityGroups": [sg] if sg else [],
                                                       "assignPublicIp": "DISABLED"}}
                    kw = dict(cluster=clusters[j % with_services], serviceName=f"svc-{j:03d}",
                              taskDefinition=tds[j % len(tds)], desiredCount=1 + j % 3, launchType="FARGATE",
                              tags=[{"key": t["Key"], "value": t["Value"]} for t in self.tags("service", j)])
                    if net:
                        kw["networkConfiguration"] = net
                    ecs.create_service(**kw)
                    self.count(a, region, "AWS::ECS::Service")

        if "AWS::Lambda::Function" in kinds:
            lam = self.client("lambda", region, creds)
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as z:
                z.writestr("index.py", "def handler(event, context):\n    return {'ok': True}\n")
            code = buf.getvalue()
            runtimes = ["python3.12", "nodejs20.x", "java21", "python3.11"]
            for i in range(n):
                lam.create_function(
                    FunctionName=f"fn-{i:03d}", Runtime=runtimes[i % len(runtimes)], Role=acct["lambda_role_arn"],
                    Handler="index.handler", Code={"ZipFile": code}, MemorySize=[128, 256, 512, 1024][i % 4],
                    Timeout=[3, 30, 60, 900][i % 4], Description=f"Berth seed function {i} – ✓",
                    Environment={"Variables": {"STAGE": ENVS[i % 3]}},
                    Tags={t["Key"]: t["Value"] for t in self.tags("function", i)},
                )
                self.count(a, region, "AWS::Lambda::Function")

        if "AWS::RDS::DBInstance" in kinds:
            rds = self.client("rds", region, creds)
            engines = [("postgres", "16.3"), ("mysql", "8.0.35"), ("mariadb", "10.11.6")]
            for i in range(n):
                engine, version = engines[i % len(engines)]
                rds.create_db_instance(
                    DBInstanceIdentifier=f"db-{i:03d}", Engine=engine, EngineVersion=version,
                    DBInstanceClass=["db.t3.micro", "db.t3.small", "db.m5.large"][i % 3], AllocatedStorage=20 + i,
                    MasterUsername="berthadmin", MasterUserPassword="not-a-secret-123", Tags=self.tags("db", i),
                )
                self.count(a, region, "AWS::RDS::DBInstance")

    # ------------------------------------------------------------------ read back

    def inventory(self, acct: str, region: str, creds: dict[str, str]) -> dict[str, list[str]]:
        ids: dict[str, list[str]] = {}
        ec2 = self.client("ec2", region, creds)
        ids["AWS::EC2::VPC"] = [v["VpcId"] for p in ec2.get_paginator("describe_vpcs").paginate() for v in p["Vpcs"]]
        ids["AWS::EC2::Subnet"] = [s["SubnetId"] for p in ec2.get_paginator("describe_subnets").paginate() for s in p["Subnets"]]
        ids["AWS::EC2::SecurityGroup"] = [g["GroupId"] for p in ec2.get_paginator("describe_security_groups").paginate()
                                          for g in p["SecurityGroups"]]
        ids["AWS::EC2::Instance"] = [i["InstanceId"] for p in ec2.get_paginator("describe_instances").paginate()
                                     for r in p["Reservations"] for i in r["Instances"] if i["State"]["Name"] != "terminated"]
        ecs = self.client("ecs", region, creds)
        cluster_arns = [c for p in ecs.get_paginator("list_clusters").paginate() for c in p["clusterArns"]]
        ids["AWS::ECS::Cluster"] = [c.split("/")[-1] for c in cluster_arns]
        svc = []
        for c in ids["AWS::ECS::Cluster"]:
            for p in ecs.get_paginator("list_services").paginate(cluster=c):
                svc.extend(f"{arn}|{c}" for arn in p["serviceArns"])
        ids["AWS::ECS::Service"] = svc
        ids["AWS::ECS::TaskDefinition"] = [t for p in ecs.get_paginator("list_task_definitions").paginate(status="ACTIVE")
                                           for t in p["taskDefinitionArns"]]
        lam = self.client("lambda", region, creds)
        ids["AWS::Lambda::Function"] = [f["FunctionName"] for p in lam.get_paginator("list_functions").paginate()
                                        for f in p["Functions"]]
        rds = self.client("rds", region, creds)
        ids["AWS::RDS::DBInstance"] = [d["DBInstanceIdentifier"] for p in rds.get_paginator("describe_db_instances").paginate()
                                       for d in p["DBInstances"]]
        return {k: sorted(v) for k, v in ids.items()}

    def buckets_by_region(self, creds: dict[str, str]) -> dict[str, list[str]]:
        s3 = self.client("s3", "us-east-1", creds)
        out: dict[str, list[str]] = {}
        for b in s3.list_buckets().get("Buckets", []):
            loc = s3.get_bucket_location(Bucket=b["Name"]).get("LocationConstraint") or "us-east-1"
            out.setdefault(loc, []).append(b["Name"])
        return {k: sorted(v) for k, v in out.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="berth_aws_emulator.seed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", required=True, help="emulator URL, e.g. http://127.0.0.1:5000")
    p.add_argument("--accounts", type=int, default=3, help="member accounts to create (default 3)")
    p.add_argument("--regions", default="us-east-1,eu-west-1", help="comma-separated regions")
    p.add_argument("--per-kind", type=int, default=20, help="resources of each kind per account x region")
    p.add_argument("--ous", action="store_true", help="place accounts in OUs (Workloads/Prod, Workloads/Dev, Sandbox)")
    p.add_argument("--kinds", default=",".join(KINDS), help="comma-separated subset of kinds to create")
    p.add_argument("--external-id", default="berth-test-external-id", help="ExternalId the member read role requires")
    p.add_argument("--read-role", default="BerthReadOnly", help="member read role name")
    p.add_argument("--org-role", default="BerthOrgReader", help="role created in the management account")
    p.add_argument("--management-account", metavar="ID",
                   help="seed the Organization of this management account (12 digits) instead of 123456789012's, "
                        "e.g. a second customer; its member accounts are new ones")
    p.add_argument("--run-id", default="seed", help="tag value / email suffix distinguishing seed runs")
    p.add_argument("--workers", type=int, default=6, help="parallel account x region seeders")
    p.add_argument("--no-identifiers", action="store_true", help="leave identifier lists out of the summary")
    p.add_argument("--output", help="also write the summary JSON to this file")
    args = p.parse_args(argv)

    if not 1 <= args.per_kind <= 500:
        p.error("--per-kind must be in 1..500")
    if args.management_account is not None and not (len(args.management_account) == 12 and args.management_account.isdigit()):
        p.error("--management-account must be a 12-digit account id")
    regions = [r.strip() for r in args.regions.split(",") if r.strip()]
    kinds = {k.strip() for k in args.kinds.split(",") if k.strip()}
    unknown = kinds - set(KINDS)
    if unknown:
        p.error(f"unknown kinds: {sorted(unknown)}")

    t0 = time.monotonic()
    s = Seeder(args.endpoint, regions, args.per_kind, args.external_id, args.read_role, args.org_role,
               args.run_id, args.workers, args.management_account)
    org = s.organization(args.accounts, args.ous)
    mgmt = org["management_account"]
    creds = {a["id"]: s.prepare_account(mgmt, a) for a in org["accounts"]}
    t_org = time.monotonic() - t0

    jobs = [(a, r) for a in org["accounts"] for r in regions]
    with ThreadPoolExecutor(max_workers=max(1, args.workers)) as pool:
        for f in [pool.submit(s.seed_scope, a, r, creds[a["id"]], kinds) for a, r in jobs]:
            f.result()
    t_seed = time.monotonic() - t0

    present: dict[str, dict[str, dict[str, int]]] = {}
    identifiers: dict[str, dict[str, dict[str, list[str]]]] = {}
    with ThreadPoolExecutor(max_workers=max(1, args.workers)) as pool:
        inv = {(a["id"], r): pool.submit(s.inventory, a["id"], r, creds[a["id"]]) for a, r in jobs}
        bkts = {a["id"]: pool.submit(s.buckets_by_region, creds[a["id"]]) for a in org["accounts"]}
        for (acct, region), f in inv.items():
            ids = f.result()
            ids["AWS::S3::Bucket"] = bkts[acct].result().get(region, [])
            identifiers.setdefault(acct, {})[region] = {k: ids[k] for k in KINDS}
            present.setdefault(acct, {})[region] = {k: len(ids[k]) for k in KINDS}

    def totals(tree: dict[str, dict[str, dict[str, int]]]) -> dict[str, int]:
        out = {k: 0 for k in KINDS}
        for regs in tree.values():
            for counts in regs.values():
                for k, v in counts.items():
                    out[k] += v
        return out

    created_t, present_t = totals(s.created), totals(present)
    summary: dict[str, Any] = {
        "endpoint": args.endpoint,
        "management_account": mgmt,
        "organization": {k: org[k] for k in ("id", "arn", "root_id", "ous", "org_role_arn")},
        "accounts": org["accounts"],
        "regions": regions,
        "per_kind": args.per_kind,
        "kinds": sorted(kinds),
        "notes": [
            "S3 is global: Cloud Control lists every bucket of the account in any region; buckets are "
            "listed here under their home region (LocationConstraint).",
            "present = what discovery should find (read back through native APIs), including each region's "
            "default VPC, default subnets and default security groups.",
            "AWS::ECS::Service identifiers are 'ServiceArn|ClusterName' (the Cluster part echoes the "
            "ResourceModel's Cluster given to ListResources).",
        ],
        "created": s.created,
        "present": present,
        "totals": {"created": created_t, "present": present_t,
                   "created_all": sum(created_t.values()), "present_all": sum(present_t.values())},
        "timing_s": {"organization_and_roles": round(t_org, 2), "resources": round(t_seed - t_org, 2),
                     "inventory": round(time.monotonic() - t0 - t_seed, 2), "total": round(time.monotonic() - t0, 2)},
    }
    if not args.no_identifiers:
        summary["identifiers"] = identifiers
    text = json.dumps(summary, ensure_ascii=False, indent=1)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
