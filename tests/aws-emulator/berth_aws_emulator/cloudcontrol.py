"""Cloud Control API (`CloudApiService.*`, awsJson1_0) answered from moto's live state.

Resources are rendered in their CloudFormation resource-schema form
(`Properties` is a JSON *string*). `ListResources` returns what the type's
list handler returns in AWS (for most types here: only the primary-identifier
properties; for AWS::EC2::Instance and AWS::RDS::DBInstance the full model),
`GetResource` the full model. Pages are ordered by identifier and the
`NextToken` is an opaque keyset token (stable while resources come and go).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable

from moto.backends import get_backend
from moto.utilities.utils import get_partition

from .errors import Response, error_response, json_response
from .identity import RequestInfo

# --------------------------------------------------------------------------- helpers


class CCError(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _tags_kv(pairs: Iterable[dict[str, Any]] | None, key: str = "Key", value: str = "Value") -> list[dict[str, str]]:
    out = []
    for t in pairs or []:
        k = t.get(key)
        if k is None or str(k).startswith("aws:"):
            continue
        out.append({"Key": k, "Value": t.get(value, "")})
    return sorted(out, key=lambda t: t["Key"])


def _tags_map(d: dict[str, str] | None) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted((d or {}).items()) if not k.startswith("aws:")]


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _pascal(obj: Any) -> Any:
    """ECS API camelCase -> CloudFormation PascalCase, recursively (keys only)."""
    if isinstance(obj, dict):
        return {(k[:1].upper() + k[1:]) if isinstance(k, str) else k: _pascal(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_pascal(v) for v in obj]
    return obj


def _iso(dt: Any) -> str | None:
    if isinstance(dt, datetime):
        return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return None


# --------------------------------------------------------------------------- config


class CCConfig:
    """Runtime-tunable behaviour (POST /_berth/config)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.default_page_size = 50
        self.list_shapes: dict[str, str] = {}
        self.s3_cross_region_get = "not_found"  # or "ok"
        self.empty_pages = False  # quirk: an empty page (with NextToken) before every real page
        self.empty_types: set[str] = set()
        self.unsupported_types: dict[str, str] = {
            # real, non-provisionable types: Cloud Control refuses them
            "AWS::CloudFormation::WaitCondition": "LIST",
            "AWS::CloudFormation::WaitConditionHandle": "LIST",
        }

    def update(self, cfg: dict[str, Any]) -> None:
        with self.lock:
            if "default_page_size" in cfg:
                n = int(cfg["default_page_size"])
                if not 1 <= n <= 100:
                    raise ValueError("default_page_size must be in 1..100")
                self.default_page_size = n
            if "list_shapes" in cfg:
                for t, shape in dict(cfg["list_shapes"]).items():
                    if shape not in ("identifiers", "full", "default"):
                        raise ValueError('list shape must be "identifiers", "full" or "default"')
                    if shape == "default":
                        self.list_shapes.pop(t, None)
                    else:
                        self.list_shapes[t] = shape
            if "s3_cross_region_get" in cfg:
                if cfg["s3_cross_region_get"] not in ("not_found", "ok"):
                    raise ValueError('s3_cross_region_get must be "not_found" or "ok"')
                self.s3_cross_region_get = cfg["s3_cross_region_get"]
            if "empty_pages" in cfg:
                self.empty_pages = bool(cfg["empty_pages"])
            if "empty_types" in cfg:
                self.empty_types = set(cfg["empty_types"])
            if "unsupported_types" in cfg:
                v = cfg["unsupported_types"]
                self.unsupported_types = {t: "LIST" for t in v} if isinstance(v, list) else dict(v)

    def describe(self) -> dict[str, Any]:
        return {
            "default_page_size": self.default_page_size,
            "list_shapes": {t: self.list_shapes.get(t, TYPES[t].list_shape) for t in sorted(TYPES)},
            "s3_cross_region_get": self.s3_cross_region_get,
            "empty_pages": self.empty_pages,
            "empty_types": sorted(self.empty_types),
            "unsupported_types": self.unsupported_types,
        }


# --------------------------------------------------------------------------- resource types


@dataclass
class Scope:
    account: str
    region: str

    @property
    def partition(self) -> str:
        return get_partition(self.region)


@dataclass
class ResourceType:
    name: str
    primary: tuple[str, ...]
    list_shape: str  # "identifiers" | "full"
    lister: Callable[[Scope, dict[str, Any]], list[tuple[str, Any]]]
    getter: Callable[[Scope, str], Any]
    render: Callable[[Scope, Any, dict[str, Any]], dict[str, Any]]
    required_list_model: tuple[str, ...] = ()


def _ec2(scope: Scope):
    return get_backend("ec2")[scope.account][scope.region]


def _ec2_tags(backend, rid: str) -> list[dict[str, str]]:
    return _tags_map(dict(backend.tags.get(rid, {})))


# ---- S3 ---------------------------------------------------------------------------


def _s3(scope: Scope):
    return get_backend("s3")[scope.account][scope.partition]


def s3_list(scope: Scope, model: dict[str, Any]):
    return [(name, b) for name, b in list(_s3(scope).buckets.items())]


def s3_get(scope: Scope, ident: str):
    b = _s3(scope).buckets.get(ident)
    if b is None:
        return None
    if b.region_name != scope.region and CONFIG.s3_cross_region_get == "not_found":
        return None
    return b


def s3_render(scope: Scope, b, ctx: dict[str, Any]) -> dict[str, Any]:
    backend = _s3(scope)
    name, region = b.name, b.region_name
    website = f"http://{name}.s3-website-{region}.amazonaws.com" if region in _DASH_WEBSITE else f"http://{name}.s3-website.{region}.amazonaws.com"
    try:
        tags = _tags_kv(backend.tagger.list_tags_for_resource(b.arn).get("Tags", []))
    except Exception:
        tags = []
    d: dict[str, Any] = {
        "BucketName": name,
        "Arn": f"arn:{get_partition(region)}:s3:::{name}",
        "DomainName": f"{name}.s3.amazonaws.com",
        "RegionalDomainName": f"{name}.s3.{region}.amazonaws.com",
        "DualStackDomainName": f"{name}.s3.dualstack.{region}.amazonaws.com",
        "WebsiteURL": website,
    }
    if b.versioning_status:
        d["VersioningConfiguration"] = {"Status": b.versioning_status}
    if b.encryption:
        rules = []
        enc = b.encryption.get("Rule") if isinstance(b.encryption, dict) else None
        for rule in enc if isinstance(enc, list) else ([enc] if enc else []):
            dflt = rule.get("ApplyServerSideEncryptionByDefault", {})
            r: dict[str, Any] = {"ServerSideEncryptionByDefault": _drop_none({
                "SSEAlgorithm": dflt.get("SSEAlgorithm"),
                "KMSMasterKeyID": dflt.get("KMSMasterKeyID"),
            })}
            if rule.get("BucketKeyEnabled") is not None:
                r["BucketKeyEnabled"] = str(rule["BucketKeyEnabled"]).lower() == "true"
            rules.append(r)
        if rules:
            d["BucketEncryption"] = {"ServerSideEncryptionConfiguration": rules}
    else:
        # S3 encrypts every bucket with SSE-S3 by default since 2023
        d["BucketEncryption"] = {"ServerSideEncryptionConfiguration": [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": False}]}
    if b.public_access_block:
        pab = b.public_access_block
        d["PublicAccessBlockConfiguration"] = {
            "BlockPublicAcls": bool(getattr(pab, "block_public_acls", False)),
            "BlockPublicPolicy": bool(getattr(pab, "block_public_policy", False)),
            "IgnorePublicAcls": bool(getattr(pab, "ignore_public_acls", False)),
            "RestrictPublicBuckets": bool(getattr(pab, "restrict_public_buckets", False)),
        }
    if b.ownership_rule:
        own = b.ownership_rule.get("ObjectOwnership") if isinstance(b.ownership_rule, dict) else None
        if own:
            d["OwnershipControls"] = {"Rules": [{"ObjectOwnership": own}]}
    if tags:
        d["Tags"] = tags
    return d


_DASH_WEBSITE = {"us-east-1", "us-west-1", "us-west-2", "ap-southeast-1", "ap-southeast-2",
                 "ap-northeast-1", "eu-west-1", "sa-east-1", "us-gov-west-1"}


# ---- EC2 instance -------------------------------------------------------------------


def ec2_instances(scope: Scope, model):
    out = []
    for res in list(_ec2(scope).reservations.values()):
        for i in list(res.instances):
            if i._state.name != "terminated":
                out.append((i.id, i))
    return out


def ec2_instance_get(scope: Scope, ident: str):
    for res in list(_ec2(scope).reservations.values()):
        for i in list(res.instances):
            if i.id == ident:
                return i if i._state.name != "terminated" else None
    return None


def ec2_instance_render(scope: Scope, i, ctx: dict[str, Any]) -> dict[str, Any]:
    backend = _ec2(scope)
    subnet = None
    try:
        subnet = backend.get_subnet(i.subnet_id) if i.subnet_id else None
    except Exception:
        subnet = None
    sgs = list(i.security_groups or [])
    nic = (i.nics or {}).get(0)
    public_ip = getattr(nic, "public_ip", None) if nic else None
    private_ip = i.private_ip
    region = scope.region
    dns_suffix = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
    d = {
        "InstanceId": i.id,
        "ImageId": i.image_id,
        "InstanceType": i.instance_type,
        "KeyName": i.key_name,
        "SubnetId": i.subnet_id,
        "VpcId": subnet.vpc_id if subnet is not None else None,
        "AvailabilityZone": i._placement.zone if getattr(i, "_placement", None) else None,
        "SecurityGroupIds": [g.id for g in sgs],
        "PrivateIpAddress": private_ip,
        "PrivateDnsName": f"ip-{private_ip.replace('.', '-')}.{dns_suffix}" if private_ip else None,
        "PublicIp": public_ip,
        "PublicDnsName": (f"ec2-{public_ip.replace('.', '-')}." + ("compute-1.amazonaws.com" if region == "us-east-1"
                          else f"{region}.compute.amazonaws.com") if public_ip else None),
        "Tenancy": "default",
        "Monitoring": i.monitoring_state == "enabled",
        "EbsOptimized": bool(i.ebs_optimized),
        "SourceDestCheck": bool(i.source_dest_check) if not isinstance(i.source_dest_check, str) else i.source_dest_check == "true",
        "DisableApiTermination": bool(i.disable_api_termination),
        "InstanceInitiatedShutdownBehavior": i.instance_initiated_shutdown_behavior,
        "IamInstanceProfile": (i.iam_instance_profile or {}).get("Arn", "").split("/")[-1] or None if isinstance(i.iam_instance_profile, dict) else None,
        "State": {"Code": str(i._state.code), "Name": i._state.name},
        "Tags": _ec2_tags(backend, i.id),
    }
    return _drop_none(d)


# ---- VPC ------------------------------------------------------------------------------


def vpc_list(scope: Scope, model):
    return [(vid, v) for vid, v in list(_ec2(scope).vpcs.items())]


def vpc_get(scope: Scope, ident: str):
    return _ec2(scope).vpcs.get(ident)


def vpc_render(scope: Scope, v, ctx) -> dict[str, Any]:
    backend = _ec2(scope)
    default_acl = next((a.id for a in list(backend.network_acls.values()) if a.vpc_id == v.id and a.default), None)
    default_sg = None
    for g in list(backend.groups.get(v.id, {}).values()):
        if g.name == "default":
            default_sg = g.id
            break
    assoc = list(getattr(v, "_cidr_block_association_set", {}).values())
    d = {
        "VpcId": v.id,
        "CidrBlock": v.cidr_block,
        "CidrBlockAssociations": [a["association_id"] for a in assoc if "." in a.get("cidr_block", "")],
        "DefaultNetworkAcl": default_acl,
        "DefaultSecurityGroup": default_sg,
        "EnableDnsHostnames": bool(v.enable_dns_hostnames),
        "EnableDnsSupport": bool(v.enable_dns_support),
        "InstanceTenancy": v.instance_tenancy,
        "Ipv6CidrBlocks": [a["cidr_block"] for a in assoc if ":" in a.get("cidr_block", "")],
        "Tags": _ec2_tags(backend, v.id),
    }
    return _drop_none(d)


# ---- Subnet -------------------------------------------------------------------------


def subnet_list(scope: Scope, model):
    out = []
    for az in list(_ec2(scope).subnets.values()):
        for sid, s in list(az.items()):
            out.append((sid, s))
    return out


def subnet_get(scope: Scope, ident: str):
    for az in list(_ec2(scope).subnets.values()):
        if ident in az:
            return az[ident]
    return None


def subnet_render(scope: Scope, s, ctx) -> dict[str, Any]:
    backend = _ec2(scope)
    zone = s._availability_zone
    acl_assoc = None
    for a in list(backend.network_acls.values()):
        for assoc in list(getattr(a, "_associations", {}).values()):
            if getattr(assoc, "subnet_id", None) == s.id:
                acl_assoc = assoc.id
                break
        if acl_assoc:
            break
    d = {
        "SubnetId": s.id,
        "VpcId": s.vpc_id,
        "CidrBlock": s.cidr_block,
        "AvailabilityZone": zone.name,
        "AvailabilityZoneId": zone.zone_id,
        "MapPublicIpOnLaunch": bool(s.map_public_ip_on_launch) if not isinstance(s.map_public_ip_on_launch, str) else s.map_public_ip_on_launch == "true",
        "AssignIpv6AddressOnCreation": bool(s.assign_ipv6_address_on_creation) if not isinstance(s.assign_ipv6_address_on_creation, str) else s.assign_ipv6_address_on_creation == "true",
        "EnableDns64": False,
        "Ipv6Native": bool(getattr(s, "ipv6_native", False)),
        "Ipv6CidrBlocks": [a.get("ipv6CidrBlock") for a in getattr(s, "ipv6_cidr_block_associations", {}).values() if a.get("ipv6CidrBlock")],
        "NetworkAclAssociationId": acl_assoc,
        "PrivateDnsNameOptionsOnLaunch": dict(getattr(s, "private_dns_name_options_on_launch", {}) or {}) or None,
        "Tags": _ec2_tags(backend, s.id),
    }
    return _drop_none(d)


# ---- Security group -------------------------------------------------------------------


def sg_list(scope: Scope, model):
    out = []
    for groups in list(_ec2(scope).groups.values()):
        for gid, g in list(groups.items()):
            out.append((gid, g))
    return out


def sg_get(scope: Scope, ident: str):
    for groups in list(_ec2(scope).groups.values()):
        if ident in groups:
            return groups[ident]
    return None


def _sg_rule(rule, egress: bool) -> dict[str, Any]:
    d: dict[str, Any] = {"IpProtocol": str(rule.ip_protocol)}
    if rule.from_port is not None:
        d["FromPort"] = int(rule.from_port)
    if rule.to_port is not None:
        d["ToPort"] = int(rule.to_port)
    rng = rule.ip_range or {}
    if rng.get("CidrIp"):
        d["CidrIp"] = rng["CidrIp"]
    if rng.get("CidrIpv6"):
        d["CidrIpv6"] = rng["CidrIpv6"]
    desc = rng.get("Description") or (rule.source_group or {}).get("Description")
    if desc:
        d["Description"] = desc
    src = rule.source_group or {}
    if src.get("GroupId"):
        if egress:
            d["DestinationSecurityGroupId"] = src["GroupId"]
        else:
            d["SourceSecurityGroupId"] = src["GroupId"]
            if src.get("UserId"):
                d["SourceSecurityGroupOwnerId"] = src["UserId"]
    if rule.prefix_list_id:
        d["DestinationPrefixListId" if egress else "SourcePrefixListId"] = rule.prefix_list_id
    return d


def sg_render(scope: Scope, g, ctx) -> dict[str, Any]:
    backend = _ec2(scope)
    d = {
        "Id": g.id,
        "GroupId": g.id,
        "GroupName": g.name,
        "GroupDescription": g.description,
        "VpcId": g.vpc_id,
        "SecurityGroupIngress": [_sg_rule(r, False) for r in list(g.ingress_rules)],
        "SecurityGroupEgress": [_sg_rule(r, True) for r in list(g.egress_rules)],
        "Tags": _ec2_tags(backend, g.id),
    }
    return _drop_none(d)


# ---- ECS ----------------------------------------------------------------------------


def _ecs(scope: Scope):
    return get_backend("ecs")[scope.account][scope.region]


def ecs_cluster_list(scope: Scope, model):
    return [(c.name, c) for c in list(_ecs(scope).clusters.values()) if c.status == "ACTIVE"]


def ecs_cluster_get(scope: Scope, ident: str):
    name = ident.split("/")[-1] if ident.startswith("arn:") else ident
    c = _ecs(scope).clusters.get(name)
    return c if c is not None and c.status == "ACTIVE" else None


def ecs_cluster_render(scope: Scope, c, ctx) -> dict[str, Any]:
    d = {
        "ClusterName": c.name,
        "Arn": c.arn,
        "ClusterSettings": [{"Name": s.get("name"), "Value": s.get("value")} for s in (c.settings or [])],
        "CapacityProviders": list(c.capacity_providers or []),
        "DefaultCapacityProviderStrategy": _pascal(list(c.default_capacity_provider_strategy or [])),
        "Configuration": _pascal(c.configuration) if c.configuration else None,
        "ServiceConnectDefaults": _pascal(c.service_connect_defaults) if c.service_connect_defaults else None,
        "Tags": _tags_kv(c.tags, "key", "value"),
    }
    return _drop_none(d)


def _cluster_name(ref: str) -> str:
    return ref.split("/")[-1] if ref.startswith("arn:") else ref


def ecs_service_list(scope: Scope, model):
    cluster_ref = model.get("Cluster")
    if not isinstance(cluster_ref, str) or not cluster_ref:
        raise CCError(
            "InvalidRequestException",
            "Missing or invalid ResourceModel property in AWS::ECS::Service list handler request input. "
            "Required property: [Cluster]",
        )
    name = _cluster_name(cluster_ref)
    backend = _ecs(scope)
    c = backend.clusters.get(name)
    if c is None or c.status != "ACTIVE":
        raise CCError("ResourceNotFoundException", f"Cluster {cluster_ref} not found. (HandlerErrorCode: NotFound)")
    out = []
    for s in list(backend.services.values()):
        if s.cluster_name == name and s.status == "ACTIVE":
            out.append((f"{s.arn}|{cluster_ref}", s))
    return out


def ecs_service_get(scope: Scope, ident: str):
    if "|" not in ident:
        raise CCError(
            "ValidationException",
            f"Identifier {ident} is not valid for AWS::ECS::Service: expected ServiceArn|Cluster",
        )
    arn, cluster_ref = ident.split("|", 1)
    name = _cluster_name(cluster_ref)
    svc_name = arn.split("/")[-1]
    s = _ecs(scope).services.get(f"{name}:{svc_name}")
    if s is None or s.arn != arn or s.status != "ACTIVE":
        return None
    return s


def ecs_service_render(scope: Scope, s, ctx) -> dict[str, Any]:
    cluster_ref = ctx.get("cluster") or s.cluster_arn
    net = s.network_configuration or {}
    awsvpc = net.get("awsvpcConfiguration")
    d = {
        "ServiceArn": s.arn,
        "ServiceName": s.name,
        "Name": s.name,
        "Cluster": cluster_ref,
        "DesiredCount": s.desired_count,
        "TaskDefinition": s.task_definition,
        "LaunchType": s.launch_type,
        "PlatformVersion": s.platform_version or ("LATEST" if s.launch_type == "FARGATE" else None),
        "SchedulingStrategy": s.scheduling_strategy,
        "PropagateTags": s.propagate_tags,
        "EnableECSManagedTags": False,
        "EnableExecuteCommand": False,
        "Role": s.role_arn,
        "DeploymentController": _pascal(s.deployment_controller) if s.deployment_controller else None,
        "DeploymentConfiguration": {
            "MaximumPercent": 200,
            "MinimumHealthyPercent": 100,
            "DeploymentCircuitBreaker": {"Enable": False, "Rollback": False},
        },
        "NetworkConfiguration": {"AwsvpcConfiguration": _pascal(awsvpc)} if awsvpc else None,
        "LoadBalancers": _pascal(list(s.load_balancers or [])),
        "ServiceRegistries": _pascal(list(s.service_registries or [])),
        "Tags": _tags_kv(s.tags, "key", "value"),
    }
    return _drop_none(d)


def ecs_td_list(scope: Scope, model):
    out = []
    for family, revs in list(_ecs(scope).task_definitions.items()):
        for rev, td in list(revs.items()):
            if td.status == "ACTIVE":
                out.append((td.arn, td))
    return out


def ecs_td_get(scope: Scope, ident: str):
    m = re.match(r"^(?:arn:[^:]+:ecs:[^:]*:\d*:task-definition/)?([^:/]+):(\d+)$", ident)
    if not m:
        return None
    revs = _ecs(scope).task_definitions.get(m.group(1), {})
    td = revs.get(int(m.group(2)))
    if td is None or td.status != "ACTIVE" or (ident.startswith("arn:") and td.arn != ident):
        return None
    return td


def ecs_td_render(scope: Scope, td, ctx) -> dict[str, Any]:
    d = {
        "TaskDefinitionArn": td.arn,
        "Family": td.family,
        "ContainerDefinitions": _pascal(list(td.container_definitions or [])),
        "Cpu": td.cpu,
        "Memory": td.memory,
        "NetworkMode": td.network_mode,
        "RequiresCompatibilities": list(td.requires_compatibilities or []) or None,
        "ExecutionRoleArn": getattr(td, "execution_role_arn", None),
        "TaskRoleArn": getattr(td, "task_role_arn", None),
        "Volumes": _pascal(list(td.volumes or [])),
        "PlacementConstraints": _pascal(list(td.placement_constraints or [])),
        "RuntimePlatform": _pascal(td.runtime_platform) if td.runtime_platform else None,
        "EphemeralStorage": _pascal(td.ephemeral_storage) if td.ephemeral_storage else None,
        "Tags": _tags_kv(td.tags, "key", "value"),
    }
    return _drop_none(d)


# ---- Lambda -------------------------------------------------------------------------


def _lambda(scope: Scope):
    return get_backend("lambda")[scope.account][scope.region]


def lambda_list(scope: Scope, model):
    return [(f.function_name, f) for f in list(_lambda(scope).list_functions())]


def lambda_get(scope: Scope, ident: str):
    name = ident.split(":")[6] if ident.startswith("arn:") and ident.count(":") >= 6 else ident
    for f in list(_lambda(scope).list_functions()):
        if f.function_name == name:
            return f
    return None


def lambda_render(scope: Scope, f, ctx) -> dict[str, Any]:
    vpc = getattr(f, "_vpc_config", None)
    d = {
        "FunctionName": f.function_name,
        "Arn": f.function_arn,
        "Runtime": f.run_time,
        "Handler": f.handler,
        "Role": f.role,
        "MemorySize": int(f.memory_size),
        "Timeout": int(f.timeout),
        "Description": f.description or None,
        "PackageType": f.package_type,
        "Architectures": list(getattr(f, "_architectures", None) or ["x86_64"]),
        "EphemeralStorage": {"Size": int(getattr(f, "_ephemeral_storage", 512) or 512)},
        "TracingConfig": dict(f.tracing_config) if f.tracing_config else {"Mode": "PassThrough"},
        "Environment": {"Variables": dict(f.environment_vars)} if f.environment_vars else None,
        "Layers": [layer.get("Arn") if isinstance(layer, dict) else str(layer) for layer in (f.layers or [])] or None,
        "VpcConfig": _drop_none({
            "SubnetIds": vpc.get("SubnetIds"),
            "SecurityGroupIds": vpc.get("SecurityGroupIds"),
        }) if isinstance(vpc, dict) and vpc else None,
        "KmsKeyArn": f.kms_key_arn,
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": getattr(f, "logs_group_name", f"/aws/lambda/{f.function_name}")},
        "RuntimeManagementConfig": {"UpdateRuntimeOn": "Auto"},
        "SnapStartResponse": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "Tags": _tags_map(f.tags),
    }
    return _drop_none(d)


# ---- RDS ----------------------------------------------------------------------------


def _rds(scope: Scope):
    return get_backend("rds")[scope.account][scope.region]


def rds_list(scope: Scope, model):
    return [(db.db_instance_identifier, db) for db in list(_rds(scope).databases.values())]


def rds_get(scope: Scope, ident: str):
    return _rds(scope).databases.get(ident)


_HOSTED_ZONES = {"us-east-1": "Z2R2ITUGPM61AM", "us-east-2": "Z2XHWR1WZ565X2", "us-west-1": "Z10WI91S59XXQN",
                 "us-west-2": "Z1PVIF0B656C1W", "eu-west-1": "Z29XKXDKYMONMX", "eu-central-1": "Z1RLNUO7B9Q6NB"}


def rds_render(scope: Scope, db, ctx) -> dict[str, Any]:
    port = str(db.port) if db.port is not None else None
    d = {
        "DBInstanceIdentifier": db.db_instance_identifier,
        "DBInstanceArn": db.db_instance_arn,
        "DbiResourceId": db.dbi_resource_id,
        "Engine": db.engine,
        "EngineVersion": db.engine_version,
        "DBInstanceClass": db.db_instance_class,
        "AllocatedStorage": str(db.allocated_storage) if db.allocated_storage is not None else None,
        "StorageType": db.storage_type,
        "StorageEncrypted": bool(db.storage_encrypted),
        "Endpoint": {"Address": db.address, "Port": port, "HostedZoneId": _HOSTED_ZONES.get(scope.region, "Z2R2ITUGPM61AM")},
        "Port": port,
        "MasterUsername": db.master_username,
        "DBName": db.db_name,
        "MultiAZ": bool(db.multi_az),
        "PubliclyAccessible": bool(db.publicly_accessible),
        "AvailabilityZone": db.availability_zone,
        "DBSubnetGroupName": getattr(db, "_db_subnet_group_name", None),
        "VPCSecurityGroups": list(db.vpc_security_group_ids or []),
        "BackupRetentionPeriod": int(db.backup_retention_period) if db.backup_retention_period is not None else None,
        "PreferredBackupWindow": db.preferred_backup_window,
        "PreferredMaintenanceWindow": db.preferred_maintenance_window,
        "AutoMinorVersionUpgrade": bool(db.auto_minor_version_upgrade),
        "CopyTagsToSnapshot": bool(db.copy_tags_to_snapshot),
        "DeletionProtection": bool(db.deletion_protection),
        "EnableIAMDatabaseAuthentication": bool(db.enable_iam_database_authentication),
        "LicenseModel": db.license_model,
        "CACertificateIdentifier": db.ca_certificate_identifier,
        "OptionGroupName": db.option_group_name,
        "InstanceCreateTime": _iso(db.instance_create_time),
        "Tags": _tags_kv(db.tags),
    }
    return _drop_none(d)


# --------------------------------------------------------------------------- registry

TYPES: dict[str, ResourceType] = {
    t.name: t
    for t in [
        ResourceType("AWS::S3::Bucket", ("BucketName",), "identifiers", s3_list, s3_get, s3_render),
        ResourceType("AWS::EC2::Instance", ("InstanceId",), "full", ec2_instances, ec2_instance_get, ec2_instance_render),
        ResourceType("AWS::EC2::SecurityGroup", ("Id",), "identifiers", sg_list, sg_get, sg_render),
        ResourceType("AWS::EC2::Subnet", ("SubnetId",), "identifiers", subnet_list, subnet_get, subnet_render),
        ResourceType("AWS::EC2::VPC", ("VpcId",), "identifiers", vpc_list, vpc_get, vpc_render),
        ResourceType("AWS::ECS::Cluster", ("ClusterName",), "identifiers", ecs_cluster_list, ecs_cluster_get, ecs_cluster_render),
        ResourceType("AWS::ECS::Service", ("ServiceArn", "Cluster"), "identifiers", ecs_service_list, ecs_service_get,
                     ecs_service_render, required_list_model=("Cluster",)),
        ResourceType("AWS::ECS::TaskDefinition", ("TaskDefinitionArn",), "identifiers", ecs_td_list, ecs_td_get, ecs_td_render),
        ResourceType("AWS::Lambda::Function", ("FunctionName",), "identifiers", lambda_list, lambda_get, lambda_render),
        ResourceType("AWS::RDS::DBInstance", ("DBInstanceIdentifier",), "full", rds_list, rds_get, rds_render),
    ]
}

CONFIG = CCConfig()

_TYPE_RE = re.compile(r"^[A-Za-z0-9]{2,64}::[A-Za-z0-9]{2,64}::[A-Za-z0-9]{2,64}(::MODULE)?$")


# --------------------------------------------------------------------------- handlers


def _encode_token(type_name: str, model_hash: str, after: str | None, empty_served: bool = False) -> str:
    d: dict[str, Any] = {"v": 1, "t": type_name, "m": model_hash, "a": after}
    if empty_served:
        d["e"] = 1
    raw = json.dumps(d, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> dict[str, Any]:
    try:
        pad = "=" * (-len(token) % 4)
        d = json.loads(base64.urlsafe_b64decode(token + pad))
        if not isinstance(d, dict) or d.get("v") != 1:
            raise ValueError
        return d
    except Exception:
        raise CCError("InvalidRequestException", "The specified NextToken is invalid or has expired.")


def _resolve_type(type_name: Any, op: str) -> ResourceType | None:
    if not isinstance(type_name, str) or not type_name:
        raise CCError("ValidationException", "1 validation error detected: Value null at 'typeName' failed to satisfy constraint: Member must not be null")
    if not _TYPE_RE.match(type_name):
        raise CCError("ValidationException",
                      f"1 validation error detected: Value '{type_name}' at 'typeName' failed to satisfy constraint: "
                      "Member must satisfy regular expression pattern: [A-Za-z0-9]{2,64}::[A-Za-z0-9]{2,64}::[A-Za-z0-9]{2,64}")
    unsupported = CONFIG.unsupported_types.get(type_name)
    if unsupported is not None and (unsupported in ("ALL", "*") or unsupported == op):
        raise CCError("UnsupportedActionException", f"Resource type {type_name} does not support {op} action")
    t = TYPES.get(type_name)
    if t is None and type_name not in CONFIG.empty_types:
        raise CCError("TypeNotFoundException", f"The type '{type_name}' cannot be found.")
    return t


def _props_for_list(t: ResourceType, scope: Scope, ident: str, obj: Any, ctx: dict[str, Any]) -> dict[str, Any]:
    shape = CONFIG.list_shapes.get(t.name, t.list_shape)
    if shape == "full":
        return t.render(scope, obj, ctx)
    # identifier-only: the primary identifier's properties, in schema order
    return dict(zip(t.primary, ident.split("|", len(t.primary) - 1)))


def list_resources(info: RequestInfo, req: dict[str, Any]) -> dict[str, Any]:
    type_name = req.get("TypeName")
    t = _resolve_type(type_name, "LIST")
    max_results = req.get("MaxResults")
    if max_results is not None:
        if not isinstance(max_results, int) or isinstance(max_results, bool) or not 1 <= max_results <= 100:
            raise CCError("ValidationException",
                          f"1 validation error detected: Value '{max_results}' at 'maxResults' failed to satisfy constraint: "
                          "Member must have value between 1 and 100")
        page = max_results
    else:
        page = CONFIG.default_page_size
    raw_model = req.get("ResourceModel")
    model: dict[str, Any] = {}
    if raw_model is not None:
        if not isinstance(raw_model, str):
            raise CCError("ValidationException", "ResourceModel must be a string")
        try:
            model = json.loads(raw_model)
        except ValueError:
            raise CCError("InvalidRequestException", "ResourceModel is not valid JSON")
        if not isinstance(model, dict):
            raise CCError("InvalidRequestException", "ResourceModel must be a JSON object")
    model_hash = hashlib.sha256(json.dumps(model, sort_keys=True).encode()).hexdigest()[:16]
    after = None
    empty_served = False
    token = req.get("NextToken")
    if token is not None:
        if not isinstance(token, str) or not token:
            raise CCError("ValidationException", "NextToken must be a non-empty string")
        d = _decode_token(token)
        if d.get("t") != type_name or d.get("m") != model_hash:
            raise CCError("InvalidRequestException", "The specified NextToken is invalid or has expired.")
        after = d.get("a")
        empty_served = bool(d.get("e"))
    out: dict[str, Any] = {"TypeName": type_name, "ResourceDescriptions": []}
    if CONFIG.empty_pages and not empty_served:
        # real Cloud Control sometimes answers an empty page that still has a NextToken
        out["NextToken"] = _encode_token(type_name, model_hash, after, empty_served=True)
        return out
    if t is None:  # configured as an existing-but-empty type
        return out
    scope = Scope(info.account, info.region)
    try:
        items = sorted(t.lister(scope, model), key=lambda p: p[0])
    except KeyError:  # a region moto does not know: nothing there
        items = []
    start = 0
    if after is not None:
        import bisect

        keys = [k for k, _ in items]
        start = bisect.bisect_right(keys, after)
    chunk = items[start:start + page]
    ctx = {"cluster": model.get("Cluster")} if t.name == "AWS::ECS::Service" else {}
    out["ResourceDescriptions"] = [
        {"Identifier": ident, "Properties": json.dumps(_props_for_list(t, scope, ident, obj, ctx), ensure_ascii=False, separators=(",", ":"))}
        for ident, obj in chunk
    ]
    if start + page < len(items):
        out["NextToken"] = _encode_token(type_name, model_hash, chunk[-1][0])
    return out


def get_resource(info: RequestInfo, req: dict[str, Any]) -> dict[str, Any]:
    type_name = req.get("TypeName")
    t = _resolve_type(type_name, "READ")
    ident = req.get("Identifier")
    if not isinstance(ident, str) or not ident:
        raise CCError("ValidationException", "1 validation error detected: Value null at 'identifier' failed to satisfy constraint: Member must not be null")
    scope = Scope(info.account, info.region)
    try:
        obj = t.getter(scope, ident) if t is not None else None
    except KeyError:
        obj = None
    if obj is None:
        raise CCError(
            "ResourceNotFoundException",
            f"{type_name} Handler returned status FAILED: Resource of type '{type_name}' with identifier '{ident}' was not found. "
            "(HandlerErrorCode: NotFound)",
        )
    ctx = {"cluster": ident.split("|", 1)[1]} if t.name == "AWS::ECS::Service" else {}
    props = t.render(scope, obj, ctx)
    return {
        "TypeName": type_name,
        "ResourceDescription": {"Identifier": ident, "Properties": json.dumps(props, ensure_ascii=False, separators=(",", ":"))},
    }


MUTATING = {"CreateResource", "UpdateResource", "DeleteResource", "CancelResourceRequest",
            "GetResourceRequestStatus", "ListResourceRequests"}


def handle(info: RequestInfo) -> Response:
    req = info.json_body()
    try:
        if info.action == "ListResources":
            return json_response(list_resources(info, req), version=info.json_version)
        if info.action == "GetResource":
            return json_response(get_resource(info, req), version=info.json_version)
        if info.action in MUTATING:
            raise CCError("UnsupportedActionException",
                          f"{info.action} is not supported by the Berth emulator (read-only Cloud Control)")
        raise CCError("UnknownOperationException", f"Unknown operation {info.target}")
    except CCError as e:
        return error_response(info, e.code, e.message, e.status)
