"""Local AWS emulator for Berth's tests.

moto (in-process, its own WSGI app) plus a layer in front of it that answers
Cloud Control (`CloudApiService.ListResources` / `GetResource`) and
`account:ListRegions` from moto's live state, enforces STS trust-policy
ExternalId conditions, and injects faults (throttling, rate limits, latency,
AccessDenied, 5xx) configured through a small admin API under `/_berth/`.
CloudFormation additionally deploys the types moto lacks (`cfn.py`).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from typing import Any, Sequence

__version__ = "0.1.0"

DEFAULT_ACCOUNT_ID = "123456789012"

_CFN_TRIGGER = "moto.cloudformation.responses"


class _InstallCfnAfterImport(importlib.abc.MetaPathFinder):
    """Runs `cfn.install()` as soon as moto's CloudFormation API module has been imported.

    Importing moto's CloudFormation eagerly costs ~2 s (it imports some thirty
    services), which every `python -m berth_aws_emulator.seed` run and every
    emulator start would pay; moto's server imports it on the first
    CloudFormation request, and this hook extends it right then, before that
    request is answered. Fires once, then leaves `sys.meta_path`.
    """

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: Any = None) -> Any:
        if fullname != _CFN_TRIGGER:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find else None
            if spec is not None:
                break
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_then_install(module: Any) -> None:
            exec_module(module)
            from . import cfn

            cfn.install()

        spec.loader.exec_module = exec_then_install  # type: ignore[method-assign]
        return spec


def _install_cfn_when_loaded() -> None:
    if _CFN_TRIGGER in sys.modules:
        from . import cfn

        cfn.install()
    elif not any(isinstance(f, _InstallCfnAfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _InstallCfnAfterImport())


_install_cfn_when_loaded()
