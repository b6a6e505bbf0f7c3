"""Make the documented DAPR_HTTP_PORT environment variable take effect in kugel_common.

Installed by kugeldrill into the Python environment it builds for a Kugelpos service (never
into the checkout), and imported at interpreter start by `kugeldrill_dapr_port.pth`.

Why: `DaprClientHelper` documents that its port "defaults to DAPR_HTTP_PORT env var or 3500",
but reads `getattr(settings, 'DAPR_HTTP_PORT', 3500)` and no setting declares that field, so
the variable is ignored; `HealthChecker`'s Dapr checks default to port 3500 too. In a
container every app has its own localhost, so 3500 works; seven services on one machine
need one sidecar port each. With DAPR_HTTP_PORT set, this hook sets `settings.DAPR_HTTP_PORT`
when `kugel_common.config.settings` is imported and makes the port the default of the
`dapr_port` parameters of `HealthChecker`. Nothing else changes; without the variable it
does nothing.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import inspect
import os
import sys

_PORT_TEXT = os.environ.get("DAPR_HTTP_PORT", "").strip()


def _patch_settings(module) -> None:
    settings = getattr(module, "settings", None)
    if settings is None:
        return
    try:
        setattr(settings, "DAPR_HTTP_PORT", int(_PORT_TEXT))
    except (AttributeError, TypeError, ValueError):
        object.__setattr__(settings, "DAPR_HTTP_PORT", int(_PORT_TEXT))


def _with_port(func):
    @functools.wraps(func)
    def call(*args, **kwargs):
        kwargs.setdefault("dapr_port", int(_PORT_TEXT))
        return func(*args, **kwargs)

    return call


def _patch_health_check(module) -> None:
    checker = getattr(module, "HealthChecker", None)
    if checker is None:
        return
    for name, attr in list(vars(checker).items()):
        func = attr.__func__ if isinstance(attr, staticmethod) else None
        if func is None:
            continue
        param = inspect.signature(func).parameters.get("dapr_port")
        if param is None or param.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD:
            continue
        setattr(checker, name, staticmethod(_with_port(func)))


_PATCHES = {
    "kugel_common.config.settings": _patch_settings,
    "kugel_common.utils.health_check": _patch_health_check,
}


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, loader, patch) -> None:
        self._loader = loader
        self._patch = patch

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        self._patch(module)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        patch = _PATCHES.get(name)
        if patch is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _PatchingLoader(spec.loader, patch)
        return spec


if _PORT_TEXT.isdigit() and not any(isinstance(f, _Finder) for f in sys.meta_path):
    sys.meta_path.insert(0, _Finder())
