"""Findings of the component audit."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any


class Severity(str, Enum):
    ERROR = "error"  # Dapr will do something other than the file intends (data loss, broken fan-out)
    WARNING = "warning"  # silently ignored or surprising; behaviour differs from the reader's intent
    INFO = "info"  # worth knowing; no action needed


@dataclass(frozen=True)
class Finding:
    rule: str  # stable id, e.g. "ignored-field"
    severity: Severity
    file: str
    component: str
    message: str
    fix: str
    field: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        return data


@dataclass(frozen=True)
class Resource:
    """One YAML document of kind Component, Subscription, Resiliency or Configuration."""

    file: str
    kind: str
    name: str
    spec: dict[str, Any]
    scopes: tuple[str, ...]

    @property
    def type(self) -> str:
        return str(self.spec.get("type", ""))

    def metadata(self) -> dict[str, str]:
        """Component metadata as Dapr reads it: a list of {name, value}."""
        items = self.spec.get("metadata") or []
        out: dict[str, str] = {}
        for item in items:
            if isinstance(item, dict) and "name" in item:
                value = item.get("value", "")
                out[str(item["name"])] = "" if value is None else str(value)
        return out
