"""The customer's CloudFormation templates (deploy/aws/): linted, deployed into an emulated
Organization through CloudFormation itself, the trust chain they build, and deletion.

A second Organization (management account 444455556666, seeded with
`--management-account`) keeps this module away from the default one other tests count.
Berth's issuer is the small OIDC issuer of test_web_identity.py; its tokens walk the chain.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import HERE, client
from test_web_identity import Issuer, rsa_key

ROOT = HERE.parent.parent
DEPLOY = ROOT / "deploy" / "aws"
MGMT = "444455556666"
AUDIENCE = "sts.amazonaws.com"
SUBJECT = "tenant:acme:0123456789abcdef"
EXTERNAL_ID = "berth-0123456789abcdef0123456789abcdef"
OUTPUTS = {"IntegrationRoleArn", "MemberRoleName", "OidcProviderArn"}


def as_account(c: Any, account: str) -> Any:
    """Static keys are 123456789012's; the header puts the request in `account`."""
    c.meta.events.register("before-sign.*.*", lambda request, **_: request.headers.__setitem__("x-moto-account-id", account))
    return c


def mgmt(endpoint: str, service: str) -> Any:
    return as_account(client(endpoint, service), MGMT)


def in_account(endpoint: str, service: str, account: str) -> Any:
    return as_account(client(endpoint, service), account)


def run_module(module: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(HERE))
    env.pop("MOTO_ACCOUNT_ID", None)
    return subprocess.run([sys.executable, "-m", f"berth_aws_emulator.{module}", *args], capture_output=True,
                          text=True, env=env, cwd=str(ROOT), timeout=300)


def deploy(endpoint: str, issuer: Issuer, stack: str, ous: list[str], **params: str) -> subprocess.CompletedProcess:
    base = {"IssuerUrl": issuer.url, "TenantSubject": SUBJECT, "ExternalId": EXTERNAL_ID,
            "OrganizationalUnitIds": ",".join(ous)}
    base.update(params)
    args = ["--endpoint", endpoint, "--account", MGMT, "--template", "deploy/aws/berth-management.yaml",
            "--member-template", "deploy/aws/berth-member-role.yaml", "--stack-name", stack]
    for k, v in base.items():
        args += ["--param", f"{k}={v}"]
    return run_module("deploy", *args)


def role_or_none(endpoint: str, account: str, name: str) -> dict[str, Any] | None:
    try:
        return in_account(endpoint, "iam", account).get_role(RoleName=name)["Role"]
    except ClientError as e:
        assert e.response["Error"]["Code"] == "NoSuchEntity"
        return None


def inline_policy(endpoint: str, account: str, role: str, name: str) -> dict[str, Any]:
    doc = in_account(endpoint, "iam", account).get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    return json.loads(doc) if isinstance(doc, str) else doc


def actions(policy: dict[str, Any], effect: str = "Allow") -> set[str]:
    out: set[str] = set()
    for st in policy["Statement"]:
        if st["Effect"] == effect:
            out |= {a.lower() for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])}
    return out


def web_identity(endpoint: str, role_arn: str, token: str) -> dict[str, str]:
    """What Berth does with a tenant token (unsigned, as the SDKs send it)."""
    sts = client(endpoint, "sts", config=Config(signature_version=UNSIGNED, retries={"total_max_attempts": 1}))
    return sts.assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName="berth", WebIdentityToken=token,
                                             DurationSeconds=900)["Credentials"]


@pytest.fixture(scope="module")
def oidc():
    """Berth's OIDC issuer on 127.0.0.1 (discovery document and JWKS)."""
    iss = Issuer()
    iss.published.append(rsa_key("berth-1"))
    try:
        yield iss
    finally:
        iss.stop()


def token(oidc: Issuer, sub: str = SUBJECT, aud: str = AUDIENCE) -> str:
    return oidc.token(oidc.published[0], sub=sub, aud=aud)


@pytest.fixture(scope="module")
def org2(emulator) -> dict[str, Any]:
    """The second customer: its own Organization with OUs and three members (one per leaf OU)."""
    r = run_module("seed", "--endpoint", emulator, "--management-account", MGMT, "--accounts", "3",
                   "--regions", "us-east-1", "--per-kind", "1", "--kinds", "AWS::S3::Bucket", "--ous",
                   "--run-id", "templates", "--no-identifiers")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["management_account"] == MGMT
    ous = {o["path"]: o["id"] for o in summary["organization"]["ous"]}
    workloads = [a["id"] for a in summary["accounts"] if a["ou_path"].startswith("/Workloads/")]
    sandbox = [a["id"] for a in summary["accounts"] if a["ou_path"] == "/Sandbox"]
    assert len(workloads) == 2 and len(sandbox) == 1
    return {"summary": summary, "ous": ous, "root": summary["organization"]["root_id"],
            "workloads": workloads, "sandbox": sandbox}


@pytest.fixture(scope="module")
def deployed(emulator, oidc, org2) -> dict[str, Any]:
    """berth-management.yaml deployed for the Workloads OU (Prod and Dev, nested)."""
    r = deploy(emulator, oidc, "berth", [org2["ous"]["/Workloads"]])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


def test_lint_passes():
    r = subprocess.run([str(DEPLOY / "lint")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == ""


def test_package_import_does_not_load_moto():
    """cfn.py installs on first use of moto's CloudFormation; the seed / deploy tools stay fast."""
    env = dict(os.environ, PYTHONPATH=str(HERE))
    code = "import sys, berth_aws_emulator.deploy, berth_aws_emulator.seed; sys.exit('moto' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], env=env, timeout=60).returncode == 0


def test_outputs_and_stack_set(emulator, oidc, org2, deployed):
    assert deployed["status"] == "CREATE_COMPLETE" and deployed["account"] == MGMT
    assert set(deployed["outputs"]) == OUTPUTS
    assert deployed["outputs"]["IntegrationRoleArn"] == f"arn:aws:iam::{MGMT}:role/BerthIntegration"
    assert deployed["outputs"]["MemberRoleName"] == "BerthRead"
    assert deployed["outputs"]["OidcProviderArn"] == f"arn:aws:iam::{MGMT}:oidc-provider/{oidc.host}"
    # the member template went through the emulator's S3, path-style on the loopback endpoint
    assert deployed["member_template_url"].startswith(f"{emulator}/berth-templates-{MGMT}/")
    [ss] = deployed["stack_sets"]
    assert ss["id"].startswith("berth-read-roles:")
    assert sorted(i["account"] for i in ss["instances"]) == sorted(org2["workloads"])
    assert {i["region"] for i in ss["instances"]} == {"us-east-1"}
    cfn = mgmt(emulator, "cloudformation")
    stack = cfn.describe_stacks(StackName="berth")["Stacks"][0]
    assert {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]} == deployed["outputs"]
    types = {r["LogicalResourceId"]: r["ResourceType"]
             for r in cfn.list_stack_resources(StackName="berth")["StackResourceSummaries"]}
    assert types == {"OidcProvider": "AWS::IAM::OIDCProvider", "IntegrationRole": "AWS::IAM::Role",
                     "ManagementReadRole": "AWS::CloudFormation::Stack",
                     "MemberReadRoles": "AWS::CloudFormation::StackSet"}
    desc = cfn.describe_stack_set(StackSetName=ss["id"])["StackSet"]
    assert desc["PermissionModel"] == "SERVICE_MANAGED" and desc["Status"] == "ACTIVE"


def test_oidc_provider_and_integration_role(emulator, oidc, deployed, org2):
    iam = mgmt(emulator, "iam")
    arn = deployed["outputs"]["OidcProviderArn"]
    assert arn in [p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]]
    provider = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert provider["Url"] == oidc.host and provider["ClientIDList"] == [AUDIENCE]

    role = iam.get_role(RoleName="BerthIntegration")["Role"]
    assert role["Arn"] == deployed["outputs"]["IntegrationRoleArn"]
    [st] = role["AssumeRolePolicyDocument"]["Statement"]
    assert st == {
        "Sid": "BerthTenantTokens", "Effect": "Allow", "Principal": {"Federated": arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{oidc.host}:aud": AUDIENCE, f"{oidc.host}:sub": SUBJECT}},
    }
    # what Berth calls with it: the Organization's accounts (whole or by OU) and the read roles, nothing else
    policy = inline_policy(emulator, MGMT, "BerthIntegration", "berth-integration")
    granted = actions(policy)
    assert {"organizations:listaccounts", "organizations:listaccountsforparent", "organizations:listchildren",
            "organizations:listorganizationalunitsforparent", "organizations:listroots",
            "organizations:describeorganization", "organizations:describeaccount",
            "organizations:listparents", "sts:assumerole"} == granted
    [assume] = [s for s in policy["Statement"] if s["Action"] == "sts:AssumeRole"]
    targets = [f"arn:aws:iam::{a}:role/BerthRead" for a in [MGMT, *org2["workloads"]]]
    assert all(fnmatch.fnmatchcase(t, assume["Resource"]) for t in targets)
    for other in (f"arn:aws:iam::{org2['workloads'][0]}:role/OrganizationAccountAccessRole",
                  f"arn:aws:iam::{MGMT}:role/BerthIntegration", f"arn:aws:iam::{MGMT}:role/BerthReadX"):
        assert not fnmatch.fnmatchcase(other, assume["Resource"])


def test_read_roles_where_targeted_only(emulator, deployed, org2):
    integration = deployed["outputs"]["IntegrationRoleArn"]
    policies = []
    for account in [MGMT, *org2["workloads"]]:
        role = role_or_none(emulator, account, "BerthRead")
        assert role is not None, account
        assert role["Arn"] == f"arn:aws:iam::{account}:role/BerthRead"
        assert role["AssumeRolePolicyDocument"]["Statement"] == [{
            "Sid": "BerthIntegrationRoleWithExternalId", "Effect": "Allow", "Principal": {"AWS": integration},
            "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}},
        }]
        policies.append(inline_policy(emulator, account, "BerthRead", "berth-read"))
    # one template, one policy: the management account's copy is the members'
    assert all(p == policies[0] for p in policies)
    for account in org2["sandbox"]:
        assert role_or_none(emulator, account, "BerthRead") is None
    # the default Organization's accounts are someone else's
    assert role_or_none(emulator, "123456789012", "BerthRead") is None


def _kinds_berth_reads() -> set[str]:
    """Cloud Control types Berth reads: mapping kinds, plugin kinds and declared lookups."""
    kinds: set[str] = set()
    for f in (ROOT / "mappings").rglob("*.yaml"):
        kinds |= set(re.findall(r"^\s*-?\s*kind:\s*['\"]?(AWS::[A-Za-z0-9]+::[A-Za-z0-9]+)", f.read_text(), re.M))
    for f in (ROOT / "plugins").glob("*/src/lib.rs"):
        src = f.read_text()
        consts = dict(re.findall(r'const\s+(\w+)\s*:\s*&str\s*=\s*"(AWS::[^"]+)"', src))
        for arg in re.findall(r"\.(?:kind|lookup)\(\s*([^)]+?)\s*\)", src):
            arg = arg.strip()
            value = arg.strip('"') if arg.startswith('"') else consts.get(arg)
            if value and value.startswith("AWS::"):
                kinds.add(value)
    return kinds


def test_read_policy_covers_what_berth_reads(emulator, deployed):
    """Every list/read permission Cloud Control's handlers need for Berth's kinds (cfn-lint's
    bundled resource schemas), plus the region and bucket-home calls Berth makes itself."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    kinds = _kinds_berth_reads()
    assert {"AWS::S3::Bucket", "AWS::EC2::Instance", "AWS::EC2::VPC", "AWS::ECS::Service",
            "AWS::ECS::TaskDefinition", "AWS::Lambda::Function", "AWS::RDS::DBInstance",
            "AWS::Organizations::Account"} <= kinds
    granted = actions(inline_policy(emulator, MGMT, "BerthRead", "berth-read"))
    assert {"cloudformation:listresources", "cloudformation:getresource", "account:listregions",
            "ec2:describeregions", "s3:listallmybuckets", "s3:getbucketlocation"} <= granted
    org_granted = actions(inline_policy(emulator, MGMT, "BerthIntegration", "berth-integration"))
    missing: dict[str, list[str]] = {}
    for kind in sorted(kinds):
        handlers = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region="us-east-1", resource_type=kind).schema["handlers"]
        if kind == "AWS::Organizations::Account":
            # read through Organizations by the integration role, not through Cloud Control
            need = {p.lower() for p in handlers["list"]["permissions"]}
            assert need <= org_granted, need - org_granted
            continue
        need = {p.lower() for h in ("list", "read") for p in handlers[h]["permissions"]}
        if need - granted:
            missing[kind] = sorted(need - granted)
    assert missing == {}


def test_tenant_token_reaches_every_read_role(emulator, oidc, deployed, org2):
    """The chain Berth walks: tenant token -> integration role -> each read role with the external id."""
    integration = deployed["outputs"]["IntegrationRoleArn"]
    creds = web_identity(emulator, integration, token(oidc))
    ident = client(emulator, "sts", creds=creds).get_caller_identity()
    assert ident["Arn"] == f"arn:aws:sts::{MGMT}:assumed-role/BerthIntegration/berth"
    # another tenant, another incarnation of this one, another audience: no
    for bad in (token(oidc, sub="tenant:other:0123456789abcdef"), token(oidc, sub="tenant:acme:fedcba9876543210"),
                token(oidc, aud="berth")):
        with pytest.raises(ClientError) as e:
            web_identity(emulator, integration, bad)
        assert e.value.response["Error"]["Code"] in ("AccessDenied", "InvalidIdentityToken")
    # nor does a plain AssumeRole get in (the trust names only the provider)
    with pytest.raises(ClientError) as e:
        mgmt(emulator, "sts").assume_role(RoleArn=integration, RoleSessionName="berth")
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    # it lists its own Organization
    listed = {a["Id"] for p in client(emulator, "organizations", creds=creds).get_paginator("list_accounts").paginate()
              for a in p["Accounts"]}
    assert listed == {MGMT, *org2["workloads"], *org2["sandbox"]}
    sts = client(emulator, "sts", creds=creds)
    for account in [MGMT, *org2["workloads"]]:
        arn = f"arn:aws:iam::{account}:role/BerthRead"
        member = sts.assume_role(RoleArn=arn, RoleSessionName="berth", ExternalId=EXTERNAL_ID)["Credentials"]
        assert client(emulator, "sts", creds=member).get_caller_identity()["Account"] == account
        if account != MGMT:  # and reads: the seed put a bucket in every member
            found = client(emulator, "cloudcontrol", creds=member).list_resources(TypeName="AWS::S3::Bucket")
            assert [d["Identifier"] for d in found["ResourceDescriptions"]] == [f"berth-{account}-us-east-1-000"]
        for bad in ({}, {"ExternalId": "berth-someone-else"}):
            with pytest.raises(ClientError) as e:
                sts.assume_role(RoleArn=arn, RoleSessionName="berth", **bad)
            assert e.value.response["Error"]["Code"] == "AccessDenied"
        # the management account itself (its root) is not trusted, external id or not
        with pytest.raises(ClientError) as e:
            mgmt(emulator, "sts").assume_role(RoleArn=arn, RoleSessionName="berth", ExternalId=EXTERNAL_ID)
        assert e.value.response["Error"]["Code"] == "AccessDenied"


def test_existing_oidc_provider_is_reused(emulator, oidc, deployed, org2):
    """A second Berth tenant in the same Organization: IAM allows one provider per issuer URL."""
    provider = deployed["outputs"]["OidcProviderArn"]
    # without ExistingOidcProviderArn the second stack cannot create its provider and rolls back
    r = deploy(emulator, oidc, "berth-b-dup", [org2["ous"]["/Workloads"]], TenantSubject="tenant:beta:42",
               IntegrationRoleName="BerthIntegrationDup", MemberRoleName="BerthReadDup")
    assert r.returncode == 1 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1
    assert "ROLLBACK_COMPLETE" in r.stderr and "OidcProvider" in r.stderr and "already exists" in r.stderr
    for account in [MGMT, *org2["workloads"]]:
        assert role_or_none(emulator, account, "BerthReadDup") is None
    assert role_or_none(emulator, MGMT, "BerthIntegrationDup") is None

    r = deploy(emulator, oidc, "berth-b", [org2["ous"]["/Workloads/Prod"]], TenantSubject="tenant:beta:42",
               ExternalId="berth-beta-external", IntegrationRoleName="BerthIntegrationB",
               MemberRoleName="BerthReadB", ExistingOidcProviderArn=provider)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["outputs"]["OidcProviderArn"] == provider
    iam = mgmt(emulator, "iam")
    assert [p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]] == [provider]
    [st] = iam.get_role(RoleName="BerthIntegrationB")["Role"]["AssumeRolePolicyDocument"]["Statement"]
    assert st["Principal"] == {"Federated": provider}
    assert st["Condition"]["StringEquals"][f"{oidc.host}:sub"] == "tenant:beta:42"
    # one provider, two tenants: each token opens its own integration role only
    web_identity(emulator, f"arn:aws:iam::{MGMT}:role/BerthIntegrationB", token(oidc, sub="tenant:beta:42"))
    with pytest.raises(ClientError) as e:
        web_identity(emulator, deployed["outputs"]["IntegrationRoleArn"], token(oidc, sub="tenant:beta:42"))
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    prod = org2["summary"]["accounts"][[a["ou_path"] for a in org2["summary"]["accounts"]].index("/Workloads/Prod")]["id"]
    for account in [MGMT, prod]:
        role = role_or_none(emulator, account, "BerthReadB")
        assert role and role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
            "AWS": f"arn:aws:iam::{MGMT}:role/BerthIntegrationB"}
    assert all(role_or_none(emulator, a, "BerthReadB") is None for a in org2["workloads"] if a != prod)

    # deleting the second stack leaves the shared provider and the first tenant alone
    mgmt(emulator, "cloudformation").delete_stack(StackName="berth-b")
    assert [p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]] == [provider]
    assert role_or_none(emulator, MGMT, "BerthIntegrationB") is None
    assert all(role_or_none(emulator, a, "BerthReadB") is None for a in [MGMT, prod])
    assert role_or_none(emulator, MGMT, "BerthIntegration") is not None
    assert all(role_or_none(emulator, a, "BerthRead") is not None for a in [MGMT, *org2["workloads"]])


def test_root_target_and_auto_deployment(emulator, oidc, deployed, org2):
    """Targeting the root reaches every member but never the management account (its role comes
    from the nested stack); AutoDeployment follows accounts into and out of the target OUs."""
    r = deploy(emulator, oidc, "berth-root", [org2["root"]], TenantSubject="tenant:gamma:7",
               IntegrationRoleName="BerthIntegrationRoot", MemberRoleName="BerthReadRoot",
               ExistingOidcProviderArn=deployed["outputs"]["OidcProviderArn"])
    assert r.returncode == 0, r.stderr
    [ss] = json.loads(r.stdout)["stack_sets"]
    members = sorted(org2["workloads"] + org2["sandbox"])
    assert sorted(i["account"] for i in ss["instances"]) == members
    assert role_or_none(emulator, MGMT, "BerthReadRoot") is not None

    org = mgmt(emulator, "organizations")
    st = org.create_account(Email="late-joiner@example.com", AccountName="Late joiner")["CreateAccountStatus"]
    new = org.describe_create_account_status(CreateAccountRequestId=st["Id"])["CreateAccountStatus"]["AccountId"]
    try:
        # created under the root: the root-targeted stack set deploys at once, the Workloads one not
        assert role_or_none(emulator, new, "BerthReadRoot") is not None
        assert role_or_none(emulator, new, "BerthRead") is None
        # into a nested Workloads OU: now the first stack set reaches it too
        org.move_account(AccountId=new, SourceParentId=org2["root"], DestinationParentId=org2["ous"]["/Workloads/Dev"])
        assert role_or_none(emulator, new, "BerthRead") is not None
        # out of Workloads again: removed (RetainStacksOnAccountRemoval: false)
        org.move_account(AccountId=new, SourceParentId=org2["ous"]["/Workloads/Dev"], DestinationParentId=org2["ous"]["/Sandbox"])
        assert role_or_none(emulator, new, "BerthRead") is None
        assert role_or_none(emulator, new, "BerthReadRoot") is not None
    finally:
        org.remove_account_from_organization(AccountId=new)
    assert role_or_none(emulator, new, "BerthReadRoot") is None

    mgmt(emulator, "cloudformation").delete_stack(StackName="berth-root")
    assert all(role_or_none(emulator, a, "BerthReadRoot") is None for a in [MGMT, *members])


def test_deploy_tool_errors(emulator, oidc, deployed, org2):
    r = run_module("deploy", "--endpoint", emulator, "--account", MGMT, "--template",
                   "deploy/aws/berth-management.yaml", "--stack-name", "x", "--param", "novalue")
    assert r.returncode == 2 and "Key=Value" in r.stderr
    # IAM takes https issuers; plain http only on loopback (the emulated issuer)
    r = deploy(emulator, oidc, "berth-http", [org2["ous"]["/Sandbox"]], IssuerUrl="http://berth.example.com",
               IntegrationRoleName="BerthIntegrationHttp", MemberRoleName="BerthReadHttp")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1
    assert "OidcProvider" in r.stderr and "https://" in r.stderr
    # an OU of another Organization (the default one's) is not a target here
    r = deploy(emulator, oidc, "berth-foreign-ou", ["ou-zzzz-abcdefgh"], IntegrationRoleName="BerthIntegrationOu",
               MemberRoleName="BerthReadOu", ExistingOidcProviderArn=deployed["outputs"]["OidcProviderArn"])
    assert r.returncode == 1 and "MemberReadRoles" in r.stderr and "ou-zzzz-abcdefgh" in r.stderr
    assert role_or_none(emulator, MGMT, "BerthIntegrationOu") is None
    assert role_or_none(emulator, MGMT, "BerthReadOu") is None
    # parameters are CloudFormation's to check: a missing one fails CreateStack itself
    r = run_module("deploy", "--endpoint", emulator, "--account", MGMT, "--template",
                   "deploy/aws/berth-management.yaml", "--stack-name", "berth-noparams")
    assert r.returncode == 1 and "CreateStack" in r.stderr and "Missing parameter" in r.stderr


def test_delete_removes_everything(emulator, deployed, org2):
    """Last: deletes the module's main stack."""
    cfn = mgmt(emulator, "cloudformation")
    stack_id = deployed["stack_id"]
    cfn.delete_stack(StackName="berth")
    gone = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
    assert gone["StackStatus"] == "DELETE_COMPLETE" and not gone.get("Outputs")
    iam = mgmt(emulator, "iam")
    assert iam.list_open_id_connect_providers()["OpenIDConnectProviderList"] == []
    assert role_or_none(emulator, MGMT, "BerthIntegration") is None
    assert all(role_or_none(emulator, a, "BerthRead") is None for a in [MGMT, *org2["workloads"]])
    # describing the deleted stack did not bring anything back
    assert cfn.list_stack_resources(StackName=stack_id)["StackResourceSummaries"] == []
    assert role_or_none(emulator, MGMT, "BerthIntegration") is None
    nested = [s for s in cfn.list_stacks()["StackSummaries"] if s["StackName"].startswith("berth-ManagementReadRole-")]
    assert nested and all(s["StackStatus"] == "DELETE_COMPLETE" for s in nested)
    [ss] = [s for s in cfn.list_stack_sets()["Summaries"] if s["StackSetName"] == "berth-read-roles"]
    assert ss["Status"] == "DELETED"
