"""The part of every drawn scenario that explore does not draw: stack, expectations, target.

Explore's own default (short breaker reset and republish, every checker on), optionally
replaced piece by piece from a scenario the user names (its description, stack options,
expectations and load config), pointed at a target file, or with stand-in defects planted.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from kugeldrill.explore.generate import DEFAULT_BASE
from kugeldrill.ground.errors import ConfigError
from kugeldrill.scenario import load_scenario


def drill_base(base_scenario: Path | None, target: Path | None, defects: list[str]) -> dict[str, Any]:
    """The base document: DEFAULT_BASE, then `base_scenario`'s parts, the target, the defects."""
    base = copy.deepcopy(DEFAULT_BASE)
    if base_scenario is not None:
        doc = yaml.safe_load(load_scenario(base_scenario).text) or {}
        for key in ("description", "stack", "expect"):
            if key in doc:
                base[key] = doc[key]
        if (doc.get("load") or {}).get("config"):
            base["load"]["config"] = doc["load"]["config"]
    if target is not None:
        if not target.is_file():
            raise ConfigError(f"--target {target}: no such target file")
        base["target"] = str(target.resolve())
    if defects:
        if target is not None:
            raise ConfigError("--defect plants a defect in the embedded stand-in; it cannot apply to a target")
        base.setdefault("stack", {})["defects"] = list(defects)
    return base
