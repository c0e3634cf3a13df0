"""Delete seeded resources from a running emulator, as their owner would, through the AWS APIs.

    python -m berth_aws_emulator.remove --endpoint URL --account ID --region R \
        --kind AWS::Lambda::Function --id NAME [--id NAME ...]

End-to-end tests use it to make resources disappear between two syncs. Member accounts are
entered through the seeded read role (moto does not enforce IAM policies, only the trust
policy and its ExternalId); the management account uses the static keys.
"""

from __future__ import annotations

import argparse
import json
import sys

from .seed import Seeder

MGMT = "123456789012"  # the account of the static keys (see README)


def remove(s: Seeder, creds: dict[str, str] | None, region: str, kind: str, ident: str) -> None:
    if kind == "AWS::Lambda::Function":
        s.client("lambda", region, creds).delete_function(FunctionName=ident)
    elif kind == "AWS::S3::Bucket":
        s3 = s.client("s3", region, creds)
        for obj in s3.list_objects_v2(Bucket=ident).get("Contents", []):
            s3.delete_object(Bucket=ident, Key=obj["Key"])
        s3.delete_bucket(Bucket=ident)
    elif kind == "AWS::EC2::Instance":
        s.client("ec2", region, creds).terminate_instances(InstanceIds=[ident])
    elif kind == "AWS::RDS::DBInstance":
        s.client("rds", region, creds).delete_db_instance(DBInstanceIdentifier=ident, SkipFinalSnapshot=True)
    elif kind == "AWS::ECS::Cluster":
        s.client("ecs", region, creds).delete_cluster(cluster=ident)
    elif kind == "AWS::Organizations::Account":
        # The management account removes a member from the Organization (it keeps existing).
        s.client("organizations", "us-east-1").remove_account_from_organization(AccountId=ident)
    else:
        raise SystemExit(f"remove: kind {kind} is not supported")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="berth_aws_emulator.remove", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--account", required=True)
    p.add_argument("--region", required=True)
    p.add_argument("--kind", required=True)
    p.add_argument("--id", action="append", required=True, dest="ids")
    p.add_argument("--external-id", default="berth-test-external-id")
    p.add_argument("--read-role", default="BerthReadOnly")
    a = p.parse_args(argv)
    s = Seeder(a.endpoint, [a.region], 0, a.external_id, a.read_role, "BerthOrgReader", "remove", 1)
    creds = None
    if a.account != MGMT and a.kind != "AWS::Organizations::Account":
        creds = s.assume(f"arn:aws:iam::{a.account}:role/{a.read_role}", "berth-remove", a.external_id)
    for ident in a.ids:
        remove(s, creds, a.region, a.kind, ident)
    json.dump({"removed": a.ids}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
