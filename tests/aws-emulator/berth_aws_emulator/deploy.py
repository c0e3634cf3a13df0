"""Deploys a CloudFormation template into the emulator as a customer would.

python -m berth_aws_emulator.deploy --endpoint http://127.0.0.1:PORT \
    --account 123456789012 --template deploy/aws/berth-management.yaml \
    --member-template deploy/aws/berth-member-role.yaml --stack-name berth \
    --param IssuerUrl=http://127.0.0.1:8443 --param TenantSubject=tenant:acme:1 ...

1. With `--member-template`: uploads it to the emulator's S3 in ACCOUNT
   (bucket `berth-templates-ACCOUNT`, key named by the content's hash) and
   passes its path-style URL `ENDPOINT/BUCKET/KEY` as `MemberTemplateUrl`
   (unless a `--param MemberTemplateUrl=...` is given).
2. CreateStack through boto3 in ACCOUNT (every request carries
   `x-moto-account-id: ACCOUNT`, which the emulator attributes it by), with
   CAPABILITY_IAM and CAPABILITY_NAMED_IAM.
3. Waits until the stack and every StackSet operation it started are done.

Prints one JSON line on stdout:
  {"stack_name", "stack_id", "status", "account", "region",
   "outputs": {OutputKey: OutputValue}, "member_template_url",
   "stack_sets": [{"id", "instances": [{"account", "region", "status"}]}]}
On failure exits 1 with a one-line reason on stderr (2 for bad arguments).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .seed import MGMT_KEYS, as_account

IN_PROGRESS = ("CREATE_IN_PROGRESS", "CREATE_PENDING", "UPDATE_IN_PROGRESS", "REVIEW_IN_PROGRESS",
               "ROLLBACK_IN_PROGRESS", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
OPERATION_RUNNING = ("RUNNING", "QUEUED", "STOPPING")


class DeployError(Exception):
    """A reason to print on one line."""


class Deployer:
    def __init__(self, endpoint: str, account: str, region: str, timeout_s: float):
        self.endpoint = endpoint.rstrip("/")
        self.account = account
        self.region = region
        self.timeout_s = timeout_s
        self.cfg = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=10, read_timeout=120)

    def client(self, service: str):
        """Static keys (account 123456789012) re-attributed to ACCOUNT by header, as moto reads it."""
        c = boto3.client(service, region_name=self.region, endpoint_url=self.endpoint, config=self.cfg, **MGMT_KEYS)
        c.meta.events.register("before-sign.*.*", as_account(self.account))
        return c

    def upload(self, path: Path) -> str:
        """Puts the template into this account's S3 and returns its path-style URL."""
        body = path.read_bytes()
        s3 = self.client("s3")
        bucket = f"berth-templates-{self.account}"
        try:
            kw: dict[str, Any] = {"Bucket": bucket}
            if self.region != "us-east-1":
                kw["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            s3.create_bucket(**kw)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        key = f"{hashlib.sha256(body).hexdigest()[:16]}/{path.name}"
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/x-yaml")
        return f"{self.endpoint}/{bucket}/{key}"

    def create(self, stack_name: str, template: Path, params: dict[str, str]) -> dict[str, Any]:
        cfn = self.client("cloudformation")
        stack_id = cfn.create_stack(
            StackName=stack_name, TemplateBody=template.read_text(encoding="utf-8"),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
        )["StackId"]
        deadline = time.monotonic() + self.timeout_s
        while True:
            stack = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
            if stack["StackStatus"] not in IN_PROGRESS:
                break
            if time.monotonic() > deadline:
                raise DeployError(f"stack {stack_name} still {stack['StackStatus']} after {self.timeout_s:.0f} s")
            time.sleep(0.2)
        if stack["StackStatus"] != "CREATE_COMPLETE":
            raise DeployError(f"stack {stack_name} ended {stack['StackStatus']}: {self._reason(cfn, stack_id)}")
        stack_sets = [self._wait_stack_set(cfn, r["PhysicalResourceId"], deadline)
                      for r in self._resources(cfn, stack_id) if r["ResourceType"] == "AWS::CloudFormation::StackSet"]
        return {
            "stack_name": stack_name, "stack_id": stack_id, "status": stack["StackStatus"],
            "account": self.account, "region": self.region,
            "outputs": {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []},
            "stack_sets": stack_sets,
        }

    @staticmethod
    def _resources(cfn: Any, stack_id: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack_id):
            out.extend(page["StackResourceSummaries"])
        return out

    @staticmethod
    def _reason(cfn: Any, stack_id: str) -> str:
        for e in cfn.describe_stack_events(StackName=stack_id).get("StackEvents", []):
            if e.get("ResourceStatusReason") and "FAILED" in e.get("ResourceStatus", ""):
                return f"{e['LogicalResourceId']}: {e['ResourceStatusReason']}"
        return "no reason given"

    def _wait_stack_set(self, cfn: Any, stack_set: str, deadline: float) -> dict[str, Any]:
        """Waits for the StackSet's operations; any that did not succeed fails the deployment."""
        while True:
            ops = cfn.list_stack_set_operations(StackSetName=stack_set).get("Summaries", [])
            if not any(o["Status"] in OPERATION_RUNNING for o in ops):
                break
            if time.monotonic() > deadline:
                raise DeployError(f"stack set {stack_set}: operations still running")
            time.sleep(0.2)
        failed = [o for o in ops if o["Status"] not in ("SUCCEEDED",)]
        if failed:
            raise DeployError(f"stack set {stack_set}: operation {failed[0]['OperationId']} {failed[0]['Status']}")
        instances = cfn.list_stack_instances(StackSetName=stack_set).get("Summaries", [])
        return {"id": stack_set, "instances": [
            {"account": i["Account"], "region": i["Region"], "status": i.get("Status")}
            for i in sorted(instances, key=lambda i: (i["Account"], i["Region"]))]}


def parse_params(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--param {item!r}: expected Key=Value")
        out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="berth_aws_emulator.deploy", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", required=True, help="emulator URL, e.g. http://127.0.0.1:5000")
    p.add_argument("--account", required=True, help="12-digit account to deploy in (e.g. the management account)")
    p.add_argument("--region", default="us-east-1", help="region of the stack (default us-east-1)")
    p.add_argument("--template", required=True, type=Path, help="the stack's template (YAML or JSON)")
    p.add_argument("--member-template", type=Path,
                   help="uploaded to S3; its URL is passed as MemberTemplateUrl")
    p.add_argument("--stack-name", required=True, help="CloudFormation stack name")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a template parameter (repeatable; a list parameter takes a comma-separated value)")
    p.add_argument("--timeout", type=float, default=120, help="seconds to wait for completion (default 120)")
    args = p.parse_args(argv)
    if not (len(args.account) == 12 and args.account.isdigit()):
        p.error("--account must be a 12-digit account id")
    try:
        params = parse_params(args.param)
    except ValueError as e:
        p.error(str(e))
    for f in (args.template, args.member_template):
        if f is not None and not f.is_file():
            p.error(f"{f}: no such file")

    d = Deployer(args.endpoint, args.account, args.region, args.timeout)
    try:
        url = None
        if args.member_template is not None:
            url = d.upload(args.member_template)
            params.setdefault("MemberTemplateUrl", url)
        out = d.create(args.stack_name, args.template, params)
    except DeployError as e:
        print(f"deploy: {e}", file=sys.stderr)
        return 1
    except ClientError as e:
        err = e.response.get("Error", {})
        msg = " ".join(str(err.get("Message") or e).split())
        print(f"deploy: {e.operation_name}: {err.get('Code', 'Error')}: {msg}", file=sys.stderr)
        return 1
    except (BotoCoreError, OSError) as e:
        print(f"deploy: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    out["member_template_url"] = params.get("MemberTemplateUrl", url)
    sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
