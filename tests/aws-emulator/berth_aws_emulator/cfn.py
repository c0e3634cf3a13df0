"""CloudFormation resource types and StackSet behaviour moto 5.2.5 lacks.

Berth's customer templates (deploy/aws/) must deploy into the emulator
through CloudFormation itself, so this module extends moto's CloudFormation
rather than translating templates into API calls:

* `AWS::IAM::OIDCProvider` — a real provider in moto's IAM (so
  `ListOpenIDConnectProviders` shows it). https issuers, and plain http only
  on a loopback host (the emulated Berth issuer); Ref and `Arn` = its ARN.
* `AWS::CloudFormation::StackSet` — a moto StackSet with its
  `StackInstancesGroup` deployed (SERVICE_MANAGED: OU targets; SELF_MANAGED:
  accounts); `Capabilities` checked like CloudFormation does; `AutoDeployment`
  followed when accounts join, move or leave the Organization; Ref and
  `StackSetId` = the StackSet id. Deleting the resource deletes its instances.
* SERVICE_MANAGED stack instances (API or template): OU targets are expanded
  recursively and never include the management account, as in AWS (moto
  goes one OU level down and includes whatever sits under the root).
* Template URLs: moto reads `localhost`, virtual-hosted and s3.amazonaws.com
  path-style URLs; a path-style URL on a loopback IP
  (`http://127.0.0.1:PORT/bucket/key`, the emulator's own S3) is read too.
* A stack whose resources fail rolls back as CloudFormation's default does:
  what it created is deleted, it ends ROLLBACK_COMPLETE and its events say
  which resource failed and why (moto answered CreateStack with the error and
  left the stack CREATE_IN_PROGRESS with its partial resources). A nested
  stack that fails fails its parent.
* A stack that is deleted or rolled back keeps no resources and outputs:
  moto resolves them lazily, so describing such a stack (DescribeStacks,
  ListStackResources) created its resources again.
* Inline IAM role policies written as YAML objects are stored as JSON text
  (moto kept the object: `GetRolePolicy` answered its Python repr and
  `GetAccountAuthorizationDetails` failed).

moto builds its type map from `CloudFormationModel.__subclasses__()` once
(cached); the models below are direct subclasses and `install()` clears the
caches. `install()` runs once moto's CloudFormation API module is loaded (the
import hook in berth_aws_emulator/__init__.py); calling it again changes
nothing.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any
from urllib.parse import unquote, urlparse

from moto.cloudformation import models as cfn_models
from moto.cloudformation import parsing as cfn_parsing
from moto.cloudformation import responses as cfn_responses
from moto.cloudformation import utils as cfn_utils
from moto.cloudformation.exceptions import ValidationError
from moto.core.common_models import CloudFormationModel
from moto.iam import models as iam_models
from moto.iam.exceptions import EntityAlreadyExists
from moto.iam.models import iam_backends
from moto.organizations.models import OrganizationsBackend, organizations_backends
from moto.utilities.utils import get_partition

from .webidentity import is_loopback_host  # one rule for plain http, shared with STS

log = logging.getLogger("berth_aws_emulator.cfn")

_installed = False
_lock = threading.RLock()

IAM_NAME_PROPERTIES = {
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
}


# ---------------------------------------------------------------------- template URLs


_orig_get_stack_from_s3_url = cfn_utils.get_stack_from_s3_url


def get_stack_from_s3_url(template_url: str, account_id: str, partition: str) -> str:
    """moto's resolver, plus path-style URLs on a loopback IP (the emulator's S3 endpoint)."""
    u = urlparse(template_url)
    if u.scheme in ("http", "https") and is_loopback_host(u.hostname) and u.hostname != "localhost":
        parts = u.path.lstrip("/").split("/", 1)
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise ValidationError(message=f"TemplateURL must name a bucket and a key: {template_url}")
        from moto.s3.models import s3_backends

        key = s3_backends[account_id][partition].get_object(parts[0], unquote(parts[1]))
        return key.value.decode("utf-8")  # type: ignore[union-attr]
    return _orig_get_stack_from_s3_url(template_url, account_id=account_id, partition=partition)


# ---------------------------------------------------------------------- AWS::IAM::OIDCProvider


def _provider_url(url: str) -> str:
    """IAM names a provider by its URL without scheme (host[:port]/path)."""
    u = urlparse(url)
    return u.netloc + u.path


class OIDCProvider(CloudFormationModel):
    """AWS::IAM::OIDCProvider backed by moto IAM's own provider object."""

    def __init__(self, account_id: str, region_name: str, arn: str, url: str):
        self.account_id = account_id
        self.region_name = region_name
        self.arn = arn
        self.url = url

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""  # no name property: IAM names a provider by its URL

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::IAM::OIDCProvider"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name == "Arn":
            return self.arn
        raise UnformattedGetAttTemplateException()

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    def is_created(self) -> bool:
        return True

    @staticmethod
    def _backend(account_id: str, region_name: str) -> Any:
        return iam_backends[account_id][get_partition(region_name)]

    @staticmethod
    def _check_url(url: Any) -> str:
        if not isinstance(url, str) or not url:
            raise ValidationError(message="AWS::IAM::OIDCProvider: Url is required")
        u = urlparse(url)
        if u.scheme == "https" and u.netloc:
            return url
        if u.scheme == "http" and is_loopback_host(u.hostname):
            return url  # the emulated Berth issuer; IAM itself accepts https only
        raise ValidationError(message=f"AWS::IAM::OIDCProvider: Url must begin with https:// (got {url!r})")

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str,
        **kwargs: Any,
    ) -> OIDCProvider:
        props = cloudformation_json.get("Properties", {})
        url = cls._check_url(props.get("Url"))
        backend = cls._backend(account_id, region_name)
        if any(p.url == _provider_url(url) for p in backend.open_id_providers.values()):
            # moto says only "Unknown"; IAM allows one provider per URL in an account
            raise EntityAlreadyExists(f"Provider with url {url} already exists.")
        provider = backend.create_open_id_connect_provider(
            url, list(props.get("ThumbprintList") or []), list(props.get("ClientIdList") or []),
            list(props.get("Tags") or []),
        )
        return cls(account_id, region_name, provider.arn, _provider_url(url))

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: OIDCProvider, new_resource_name: str, cloudformation_json: dict[str, Any],
        account_id: str, region_name: str,
    ) -> OIDCProvider:
        """A new Url replaces the provider; client ids and thumbprints change in place."""
        props = cloudformation_json.get("Properties", {})
        url = cls._check_url(props.get("Url"))
        backend = cls._backend(account_id, region_name)
        if _provider_url(url) != original_resource.url:
            new = cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)
            backend.delete_open_id_connect_provider(original_resource.arn)
            return new
        provider = backend.get_open_id_connect_provider(original_resource.arn)
        provider.client_id_list = list(props.get("ClientIdList") or [])
        provider.thumbprint_list = list(props.get("ThumbprintList") or [])
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str,
    ) -> None:
        cls._backend(account_id, region_name).delete_open_id_connect_provider(resource_name)

    def delete(self, account_id: str, region_name: str) -> None:
        self._backend(self.account_id, self.region_name).delete_open_id_connect_provider(self.arn)


# ---------------------------------------------------------------------- SERVICE_MANAGED targets


def _org_backend(management_account: str, partition: str) -> OrganizationsBackend | None:
    accounts = dict.get(organizations_backends, management_account)
    backend = dict.get(accounts, partition) if accounts is not None else None
    return backend if backend is not None and backend.org is not None else None


def ou_accounts(org: OrganizationsBackend, ou_ids: list[str]) -> list[str]:
    """ACTIVE accounts under these OUs / roots, recursively, without the management account.

    Unknown ids are refused, as CloudFormation's stack set operation would fail on them.
    """
    known = {ou.id for ou in org.ou}
    unknown = [o for o in ou_ids if o not in known]
    if unknown:
        raise ValidationError(message=f"OrganizationalUnitIds not in the organization: {unknown}")
    under: set[str] = set(ou_ids)
    frontier = list(ou_ids)
    while frontier:
        parent = frontier.pop()
        for ou in org.ou:
            if ou.parent_id == parent and ou.id not in under:
                under.add(ou.id)
                frontier.append(ou.id)
    mgmt = org.org.master_account_id if org.org else None
    return [a.id for a in org.accounts
            if a.parent_id in under and a.id != mgmt and getattr(a, "status", "ACTIVE") == "ACTIVE"]


def _filter_accounts(targets: list[str], deployment_targets: dict[str, Any]) -> list[str]:
    """DeploymentTargets.AccountFilterType applied to the OU accounts."""
    accounts = list(deployment_targets.get("Accounts") or [])
    kind = deployment_targets.get("AccountFilterType") or "NONE"
    if kind == "INTERSECTION":
        return [a for a in targets if a in accounts]
    if kind == "DIFFERENCE":
        return [a for a in targets if a not in accounts]
    if kind == "UNION":
        return targets + [a for a in accounts if a not in targets]
    return targets


_orig_create_instances = cfn_models.StackInstances.create_instances


def create_instances(self: Any, accounts: list[str], regions: list[str], parameters: Any,
                     deployment_targets: dict[str, Any], permission_model: str) -> list[dict[str, Any]]:
    """SERVICE_MANAGED: every account under the OUs (recursively), never the management account.

    The targets are remembered on the StackInstances so AutoDeployment can follow the Organization.
    """
    if permission_model != "SERVICE_MANAGED":
        return _orig_create_instances(self, accounts, regions, parameters, deployment_targets, permission_model)
    org = _org_backend(self.account_id, self.partition)
    if org is None:
        raise ValidationError(message="SERVICE_MANAGED stack sets need the caller to be an Organization's "
                                      "management account")
    ou_ids = list(deployment_targets.get("OrganizationalUnitIds") or [])
    targets = _filter_accounts(ou_accounts(org, ou_ids), deployment_targets)
    if not hasattr(self, "berth_targets"):
        self.berth_targets = []
    self.berth_targets.append({"targets": dict(deployment_targets), "regions": list(regions),
                               "parameters": parameters})
    with _lock:
        return _orig_create_instances(self, targets, regions, parameters, {}, permission_model)


def reconcile_auto_deployment(management_account: str, partition: str) -> None:
    """AutoDeployment: instances for accounts now under a target OU, none for those gone from it."""
    org = _org_backend(management_account, partition)
    per_region = dict.get(cfn_models.cloudformation_backends, management_account)
    if org is None or not per_region:
        return
    with _lock:
        for backend in list(dict.values(per_region)):
            for stackset in list(backend.stacksets.values()):
                auto = getattr(stackset, "berth_auto_deployment", None)
                instances = stackset.instances
                if stackset.status != "ACTIVE" or not auto or not auto.get("Enabled"):
                    continue
                if stackset.permission_model != "SERVICE_MANAGED":
                    continue
                wanted: dict[tuple[str, str], Any] = {}
                for t in getattr(instances, "berth_targets", []):
                    try:
                        accounts = _filter_accounts(ou_accounts(org, list(t["targets"].get("OrganizationalUnitIds") or [])),
                                                    t["targets"])
                    except ValidationError:
                        accounts = []  # an OU deleted since: its accounts are no longer targets
                    for region in t["regions"]:
                        for a in accounts:
                            wanted.setdefault((a, region), t["parameters"])
                have = {(i.account_id, i.region_name) for i in instances.stack_instances}
                for (account, region), params in wanted.items():
                    if (account, region) not in have:
                        _orig_create_instances(instances, [account], [region], params or stackset.parameters, {},
                                               "SERVICE_MANAGED")
                if not auto.get("RetainStacksOnAccountRemoval"):
                    for account, region in have - set(wanted):
                        instances.delete([account], [region])


def _following_the_organization(method: Any) -> Any:
    def wrapper(self: OrganizationsBackend, *args: Any, **kwargs: Any) -> Any:
        out = method(self, *args, **kwargs)
        reconcile_auto_deployment(self.account_id, self.partition)
        return out

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    wrapper.berth_wrapped = True  # type: ignore[attr-defined]
    return wrapper


# ---------------------------------------------------------------------- AWS::CloudFormation::StackSet


def _check_capabilities(template: dict[str, Any], capabilities: list[str]) -> None:
    """CloudFormation refuses IAM resources without CAPABILITY_IAM, named ones without CAPABILITY_NAMED_IAM."""
    resources = (template or {}).get("Resources") or {}
    iam = [r for r in resources.values() if isinstance(r, dict) and str(r.get("Type", "")).startswith("AWS::IAM::")]
    named = [r for r in iam if IAM_NAME_PROPERTIES.get(r["Type"]) in (r.get("Properties") or {})]
    if named and "CAPABILITY_NAMED_IAM" not in capabilities:
        raise ValidationError(message="Requires capabilities : [CAPABILITY_NAMED_IAM]")
    if iam and not ({"CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"} & set(capabilities)):
        raise ValidationError(message="Requires capabilities : [CAPABILITY_IAM]")


class StackSetResource(CloudFormationModel):
    """AWS::CloudFormation::StackSet: a moto StackSet plus its StackInstancesGroup."""

    def __init__(self, account_id: str, region_name: str, stackset: Any):
        self.account_id = account_id
        self.region_name = region_name
        self.stackset = stackset

    @staticmethod
    def cloudformation_name_type() -> str:
        return "StackSetName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudFormation::StackSet"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "StackSetId"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name == "StackSetId":
            return self.stackset.id
        raise UnformattedGetAttTemplateException()

    @property
    def physical_resource_id(self) -> str:
        return self.stackset.id

    def is_created(self) -> bool:
        return True

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str,
        **kwargs: Any,
    ) -> StackSetResource:
        props = cloudformation_json.get("Properties", {})
        backend = cfn_models.cloudformation_backends[account_id][region_name]
        partition = get_partition(region_name)
        if props.get("TemplateBody") is not None:
            body = props["TemplateBody"]
            body = body if isinstance(body, str) else json.dumps(body)
        elif props.get("TemplateURL"):
            body = get_stack_from_s3_url(props["TemplateURL"], account_id=account_id, partition=partition)
        else:
            raise ValidationError(message="AWS::CloudFormation::StackSet: TemplateBody or TemplateURL is required")
        _check_capabilities(cfn_models.Stack.parse_template(body), list(props.get("Capabilities") or []))
        model = props.get("PermissionModel") or "SELF_MANAGED"
        parameters = {p["ParameterKey"]: p["ParameterValue"] for p in props.get("Parameters") or []}
        tags = {t["Key"]: t["Value"] for t in props.get("Tags") or []}
        stackset = backend.create_stack_set(
            name=props.get("StackSetName") or resource_name, template=body, parameters=parameters, tags=tags,
            permission_model=model, admin_role=props.get("AdministrationRoleARN"),
            exec_role=props.get("ExecutionRoleName"), description=props.get("Description"),
        )
        stackset.berth_auto_deployment = dict(props.get("AutoDeployment") or {})
        stackset.berth_capabilities = list(props.get("Capabilities") or [])
        try:
            for group in props.get("StackInstancesGroup") or []:
                targets = dict(group.get("DeploymentTargets") or {})
                regions = list(group.get("Regions") or [])
                overrides = {p["ParameterKey"]: p["ParameterValue"] for p in group.get("ParameterOverrides") or []}
                params = {**parameters, **overrides}
                if model == "SERVICE_MANAGED":
                    stackset.create_stack_instances([], regions, targets, params)
                else:
                    stackset.create_stack_instances(list(targets.get("Accounts") or []), regions, None, params)
        except Exception:
            cls._remove(backend, stackset)
            raise
        return cls(account_id, region_name, stackset)

    @staticmethod
    def _remove(backend: Any, stackset: Any) -> None:
        for inst in list(stackset.instances.stack_instances):
            stackset.instances.delete([inst.account_id], [inst.region_name])
        backend.delete_stack_set(stackset.id)

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: StackSetResource, new_resource_name: str, cloudformation_json: dict[str, Any],
        account_id: str, region_name: str,
    ) -> StackSetResource:
        """Replaced as a whole (instances included): enough for an emulator."""
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str,
    ) -> None:
        backend = cfn_models.cloudformation_backends[account_id][region_name]
        cls._remove(backend, backend.describe_stack_set(resource_name))

    def delete(self, account_id: str, region_name: str) -> None:
        backend = cfn_models.cloudformation_backends[self.account_id][self.region_name]
        if self.stackset.status != "DELETED":
            self._remove(backend, self.stackset)


# ---------------------------------------------------------------------- rollback


def _error_text(e: BaseException) -> str:
    code = getattr(e, "code", None)
    message = getattr(e, "message", None) or str(e) or type(e).__name__
    text = f"{message} ({code})" if isinstance(code, str) and code else message
    return " ".join(str(text).split())


_orig_parse_and_create = cfn_parsing.parse_and_create_resource


def parse_and_create_resource(logical_id: str, resource_json: dict[str, Any], resources_map: Any, account_id: str,
                              region_name: str) -> Any:
    """moto's, remembering on the error which resource failed (the innermost, for lazy references)."""
    try:
        return _orig_parse_and_create(logical_id, resource_json, resources_map, account_id, region_name)
    except Exception as e:
        if not hasattr(e, "berth_logical_id"):
            try:
                e.berth_logical_id = logical_id  # type: ignore[attr-defined]
            except AttributeError:
                pass
        raise


def _roll_back(stack: Any, error: BaseException) -> None:
    """CREATE_FAILED event for the failed resource, created resources deleted, ROLLBACK_COMPLETE."""
    logical = getattr(error, "berth_logical_id", None) or stack.name
    resources = (stack.template_dict or {}).get("Resources") or {}
    rtype = (resources.get(logical) or {}).get("Type", "AWS::CloudFormation::Stack")
    reason = _error_text(error)
    stack.events.append(cfn_models.Event(
        stack_id=stack.stack_id, stack_name=stack.name, logical_resource_id=logical, physical_resource_id="",
        resource_type=rtype, resource_status="CREATE_FAILED", resource_status_reason=reason,
        resource_properties=None))
    stack._add_stack_event("ROLLBACK_IN_PROGRESS",
                           resource_status_reason=f"The following resource(s) failed to create: [{logical}]. "
                                                  "Rollback requested by user.")
    try:
        stack.resource_map.delete()
    except Exception as e:  # what cannot be deleted stays, as in AWS (DELETE_FAILED)
        log.warning("rollback of %s left resources behind: %s", stack.name, _error_text(e))
    _inert(stack)
    stack.status = "ROLLBACK_COMPLETE"
    stack._add_stack_event("ROLLBACK_COMPLETE")


def _inert(stack: Any) -> None:
    """No resources, no outputs: moto's maps create whatever a lookup misses."""
    stack.resource_map._resource_json_map = {}
    stack.output_map = cfn_parsing.OutputMap(stack.resource_map, {"Outputs": {}}, stack.stack_id)


_orig_stack_delete = cfn_models.Stack.delete


def _stack_delete(self: Any) -> None:
    _orig_stack_delete(self)
    _inert(self)


_orig_create_stack = cfn_models.CloudFormationBackend.create_stack


def create_stack(self: Any, name: str, template: str, parameters: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
    """Resource failures roll the stack back; template / parameter errors still fail CreateStack itself.

    A SELF_MANAGED stack set's instance stack (moto names it `StackSet:...`) rolls back and
    still raises, so the stack set operation fails as before.
    """
    before = set(self.stacks)
    try:
        return _orig_create_stack(self, name, template, parameters, *args, **kwargs)
    except Exception as e:
        new = [st for sid, st in self.stacks.items() if sid not in before]
        if not new:
            raise
        _roll_back(new[0], e)
        if name.startswith("StackSet:"):
            raise
        return new[0]


_orig_nested_create = cfn_models.Stack.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]


def _nested_create(cls: Any, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
                   region_name: str, **kwargs: Any) -> Any:
    """AWS::CloudFormation::Stack: a nested stack that rolled back is deleted and fails the parent."""
    stack = _orig_nested_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
    if stack.status != "CREATE_COMPLETE":
        reason = next((e.resource_status_reason for e in stack.events if e.resource_status == "CREATE_FAILED"), "")
        cfn_models.cloudformation_backends[account_id][region_name].delete_stack(stack.stack_id)
        raise ValidationError(message=f"Embedded stack {stack.stack_id} was not successfully created: {reason}")
    return stack


# ---------------------------------------------------------------------- IAM role policies


_orig_role_create = iam_models.Role.create_from_cloudformation_json.__func__  # type: ignore[attr-defined]


def _role_create(cls: Any, resource_name: str, cloudformation_json: dict[str, Any], account_id: str,
                 region_name: str, **kwargs: Any) -> Any:
    """Inline policies as JSON text, the form IAM stores and GetRolePolicy returns."""
    props = cloudformation_json.get("Properties") or {}
    for policy in props.get("Policies") or []:
        if isinstance(policy.get("PolicyDocument"), (dict, list)):
            policy["PolicyDocument"] = json.dumps(policy["PolicyDocument"])
    return _orig_role_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)


# ---------------------------------------------------------------------- install


def install() -> None:
    """Registers the models and patches with moto; idempotent."""
    global _installed
    with _lock:
        if _installed:
            return
        for mod in (cfn_utils, cfn_models, cfn_responses):
            mod.get_stack_from_s3_url = get_stack_from_s3_url  # type: ignore[attr-defined]
        cfn_models.StackInstances.create_instances = create_instances  # type: ignore[method-assign]
        iam_models.Role.create_from_cloudformation_json = classmethod(_role_create)  # type: ignore[method-assign,assignment]
        cfn_parsing.parse_and_create_resource = parse_and_create_resource
        cfn_models.Stack.delete = _stack_delete  # type: ignore[method-assign]
        cfn_models.CloudFormationBackend.create_stack = create_stack  # type: ignore[method-assign]
        cfn_models.Stack.create_from_cloudformation_json = classmethod(_nested_create)  # type: ignore[method-assign,assignment]
        for name in ("create_account", "move_account", "remove_account_from_organization"):
            method = getattr(OrganizationsBackend, name)
            if not getattr(method, "berth_wrapped", False):
                setattr(OrganizationsBackend, name, _following_the_organization(method))
        for cache in (cfn_parsing.get_model_list, cfn_parsing.get_model_map, cfn_parsing.get_name_type_map):
            cache.cache_clear()
        missing = {OIDCProvider.cloudformation_type(), StackSetResource.cloudformation_type()} - set(cfn_parsing.get_model_map())
        if missing:
            raise RuntimeError(f"moto did not pick up the CloudFormation models for {sorted(missing)}")
        _installed = True


__all__ = ["OIDCProvider", "StackSetResource", "install", "is_loopback_host", "ou_accounts",
           "reconcile_auto_deployment"]
