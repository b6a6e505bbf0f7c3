"""JSON Schema of scenario and target files, generated from the models that validate them.

Editors that speak JSON Schema (VS Code's YAML extension, JetBrains IDEs, any
yaml-language-server client) then complete field names and flag mistakes while a file is
written; `kugeldrill validate` remains the judge (it also checks what a schema cannot:
links against the stand-in or the target, fault windows against the load).

One adjustment to pydantic's output: a duration field is a number in the model, but the
file may say `30s`, `2m` or `500ms` (a before-validator parses it). Which fields accept
that is found by asking each model's own validator, not by a list kept here, so a field
that starts or stops accepting durations changes the schema by itself.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from kugeldrill.scenario_schema import Scenario
from kugeldrill.target import TargetFile
from kugeldrill.chaos.record import Seconds
from kugeldrill.ground.durations import PATTERN
from kugeldrill.yamlfile import model_in, record_fields

MODELS: dict[str, type[BaseModel]] = {"scenario": Scenario, "target": TargetFile}
DURATION_PATTERN = PATTERN  # what the one duration parser reads: 90, 500ms, 90s, 1m30s, 2h


def _accepts_duration(model: type[BaseModel], name: str) -> bool:
    """Does the model's own validator take "2s" for this field?"""
    try:
        model.__pydantic_validator__.validate_assignment(model.model_construct(), name, "2s")
    except ValidationError as exc:
        return not any(tuple(err["loc"])[:1] == (name,) for err in exc.errors())
    except Exception:  # noqa: BLE001 - a model-level check on an unfinished instance: the field itself passed
        return True
    return True


def _models(root: type[BaseModel]) -> list[type[BaseModel]]:
    seen: list[type[BaseModel]] = []
    todo = [root]
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.append(model)
        todo += [m for f in model.model_fields.values() if (m := model_in(f.annotation)) is not None]
    return seen


def _with_duration(prop: dict[str, Any]) -> dict[str, Any]:
    """A number property that also takes a duration string."""
    text = {"type": "string", "pattern": DURATION_PATTERN}
    if prop.get("type") in ("number", "integer"):
        number = {k: v for k, v in prop.items() if k not in ("title", "description", "default")}
        rest = {k: v for k, v in prop.items() if k in ("title", "description", "default")}
        return {**rest, "anyOf": [number, text]}
    if "anyOf" in prop and any(o.get("type") in ("number", "integer") for o in prop["anyOf"]):
        return {**prop, "anyOf": [*prop["anyOf"], text]}
    return prop


def _record_durations(models: list[type[BaseModel]]) -> dict[str, list[str]]:
    """Record dataclasses the models hold (a scenario's faults: chaos' PlannedFault) -> their
    fields written as durations (those parsed by the one duration parser, `Seconds`)."""
    out: dict[str, list[str]] = {}
    for model in models:
        for info in model.model_fields.values():
            record = model_in(info.annotation, records=True)
            if record is None or issubclass(record, BaseModel):
                continue
            out[record.__name__] = [key for key, annotation in record_fields(record).items()
                                    if Seconds in getattr(annotation, "__metadata__", ())]
    return out


def json_schema(kind: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a `scenario` or `target` file."""
    root = MODELS[kind]
    schema = root.model_json_schema(by_alias=True, mode="validation")
    models = _models(root)
    for model in models:
        props = schema["properties"] if model is root else schema.get("$defs", {}).get(model.__name__, {}).get(
            "properties", {})
        for name, info in model.model_fields.items():
            key = info.alias or name
            if key in props and _accepts_duration(model, name):
                props[key] = _with_duration(props[key])
    for record, keys in _record_durations(models).items():
        props = schema.get("$defs", {}).get(record, {}).get("properties", {})
        for key in keys:
            if key in props:
                props[key] = _with_duration(props[key])
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": f"kugeldrill {kind} file", **{k: v for k, v in schema.items() if k != "title"}}
