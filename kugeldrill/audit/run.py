"""Running the audit over a folder and rendering the result."""

from __future__ import annotations

import json
from pathlib import Path

from kugeldrill.audit import rules
from kugeldrill.audit.dapr_facts import KUGELPOS_SUBSCRIBERS
from kugeldrill.audit.loader import discover_compose_files, load_compose_images, load_resources
from kugeldrill.audit.model import Finding, Severity
from kugeldrill.ground.errors import ConfigError


def parse_version(text: str) -> tuple[int, int]:
    try:
        major, minor = text.split(".")[:2]
        return int(major), int(minor)
    except ValueError as err:
        raise ConfigError(f"--dapr-version expects MAJOR.MINOR such as 1.18, got {text!r}") from err


def audit_directory(
    folder: Path,
    *,
    dapr_version: str = "1.18",
    compose_files: list[Path] | None = None,
    subscribers: dict[str, tuple[str, ...]] | None = None,
) -> list[Finding]:
    """All findings for the Dapr resources in `folder` (and daprd images in compose files)."""
    resources = load_resources(folder)
    subs = dict(KUGELPOS_SUBSCRIBERS)
    for res in resources:  # declarative subscriptions add subscribers
        if res.kind == "Subscription":
            pubsub = str(res.spec.get("pubsubname", ""))
            subs[pubsub] = tuple(dict.fromkeys([*subs.get(pubsub, ()), *res.scopes]))
    subs.update(subscribers or {})
    compose = compose_files if compose_files is not None else discover_compose_files(folder)
    findings = [
        *rules.ignored_fields(resources),
        *rules.shared_consumer_group(resources, subs),
        *rules.duration_units(resources),
        *rules.lost_deliveries(resources, parse_version(dapr_version)),
        *rules.unpinned_images(load_compose_images(compose)),
        *rules.shared_state_keys(resources),
    ]
    return findings


def exit_code(findings: list[Finding]) -> int:
    """1 when any finding is a warning or an error (CI fails), else 0."""
    return 1 if any(f.severity in (Severity.ERROR, Severity.WARNING) for f in findings) else 0


def render_json(findings: list[Finding], folder: Path) -> str:
    return json.dumps(
        {"folder": str(folder), "findings": [f.to_dict() for f in findings], "count": len(findings)},
        indent=2,
    )


def render_text(findings: list[Finding], folder: Path) -> str:
    if not findings:
        return f"audit {folder}: no findings"
    lines = [f"audit {folder}: {len(findings)} finding(s)"]
    for f in findings:
        where = f"{Path(f.file).name} [{f.component}]" + (f" {f.field}" if f.field else "")
        lines.append(f"  {f.severity.value.upper():7} {f.rule}: {where}")
        lines.append(f"          {f.message}")
        lines.append(f"          fix: {f.fix}")
    return "\n".join(lines)
