"""YAML files a person writes — scenarios and target files — read so that every problem names
its file, line and field.

Why our own reading: `yaml.safe_load` forgets where a value came from, so a schema error
could only say "load.users.CartUser: must be >= 0". Composing the YAML node tree first
keeps a line for every path; pydantic's errors, chaos' fault checks and the cross-file
checks are then all reported the same way — `file:line: field 'x.y': what was expected` —
and all of them at once, so one `kugeldrill validate` shows everything to fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from kugeldrill.ground.errors import ConfigError, NotLoopbackError

FieldPath = tuple[str | int, ...]
Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or doubtful: a warning) with one field of one file."""

    file: str
    line: int | None
    field: str  # dotted path, e.g. "faults[0].link"; "" for the file as a whole
    message: str
    hint: str | None = None
    severity: Severity = "error"
    kind: str = "invalid"  # "invalid", "host" (a non-loopback address), "yaml", "missing-file"

    def render(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        what = f"field '{self.field}': " if self.field else ""
        label = "warning: " if self.severity == "warning" else ""
        text = f"{where}: {label}{what}{self.message}"
        return text + (f"\n    hint: {self.hint}" if self.hint else "")

    def record(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "field": self.field, "message": self.message,
                "hint": self.hint, "severity": self.severity}


def sort_problems(problems: Iterable[Problem]) -> list[Problem]:
    """By file, then line (problems without a line first): the order a person fixes them in."""
    return sorted(problems, key=lambda p: (p.file, p.line or 0))


def errors_of(problems: Iterable[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


class FileProblems(ConfigError):
    """A file (or a scenario with its target file) has problems: every one is in the message."""

    def __init__(self, title: str, problems: list[Problem], *, hint: str | None = None) -> None:
        self.problems = problems
        super().__init__(title + "\n" + "\n".join(p.render() for p in problems), hint=hint)


class HostProblems(FileProblems, NotLoopbackError):
    """Only non-loopback addresses are wrong: the loopback rule refused the file."""


def raise_problems(title: str, problems: list[Problem], *, hint: str | None = None) -> None:
    """Raise FileProblems for the errors among `problems` (warnings alone pass)."""
    errors = errors_of(problems)
    if not errors:
        return
    cls = HostProblems if all(p.kind == "host" for p in errors) else FileProblems
    raise cls(title, errors, hint=hint)


def dotted(path: FieldPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_DOTTED_RE = re.compile(r"^([A-Za-z_][\w-]*(?:\[\d+\])?(?:\.[\w@*-]+|\[\d+\])*)")


def split_field(text: str) -> tuple[FieldPath, str]:
    """`"faults[2].link: matches no link"` → (("faults", 2, "link"), "matches no link"): the
    dotted field another module's error message starts with, and the rest of the message."""
    match = _DOTTED_RE.match(text)
    if not match:
        return (), text
    path: list[str | int] = []
    for name, index in re.findall(r"([\w@*-]+)|\[(\d+)\]", match.group(1)):
        path.append(int(index) if index else name)
    return tuple(path), text[match.end():].lstrip(" .:") or text


@dataclass
class YamlDoc:
    """A parsed YAML mapping with the 1-based line of every path in it."""

    source: str
    text: str
    data: dict[str, Any]
    lines: dict[FieldPath, int] = field(default_factory=dict)

    def line_of(self, path: FieldPath) -> int | None:
        """Line of the longest prefix of `path` that exists in the file."""
        for n in range(len(path), -1, -1):
            if path[:n] in self.lines:
                return self.lines[path[:n]]
        return None

    def has(self, path: FieldPath) -> bool:
        return path in self.lines

    def problem(self, path: FieldPath, message: str, *, hint: str | None = None, severity: Severity = "error",
                kind: str = "invalid") -> Problem:
        return Problem(self.source, self.line_of(path), dotted(path), message, hint, severity, kind)


def _walk(node: yaml.Node, path: FieldPath, lines: dict[FieldPath, int], source: str,
          problems: list[Problem]) -> None:
    """Record the line of every path; a duplicate key is a problem (YAML keeps the last silently)."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.append(Problem(source, line, dotted(path + (key,)),
                                        f"duplicate key (first given on line {seen[key]}); YAML would silently "
                                        "keep only the last one", kind="yaml"))
                continue
            seen[key] = line
            lines[path + (key,)] = line
            _walk(value_node, path + (key,), lines, source, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[path + (i,)] = item.start_mark.line + 1
            _walk(item, path + (i,), lines, source, problems)


def parse_yaml(text: str, source: str, what: str, example: str) -> tuple[YamlDoc | None, list[Problem]]:
    """The document and its line map, or None with the problems that stop reading it."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        context = f" ({exc.context})" if exc.context else ""
        return None, [Problem(source, mark.line + 1 if mark else None, "", f"not valid YAML: {exc.problem or exc}"
                              + context, kind="yaml")]
    except yaml.YAMLError as exc:
        return None, [Problem(source, None, "", f"not valid YAML: {exc}", kind="yaml")]
    if root is None or not isinstance(data, dict):
        return None, [Problem(source, 1, "", f"a {what} must be a YAML mapping", hint=f"see {example}", kind="yaml")]
    lines: dict[FieldPath, int] = {}
    problems: list[Problem] = []
    _walk(root, (), lines, source, problems)
    return YamlDoc(source, text, data, lines), problems


def read_text(path: Path, what: str) -> tuple[str | None, list[Problem]]:
    try:
        return path.read_text(encoding="utf-8"), []
    except FileNotFoundError:
        return None, [Problem(str(path), None, "", f"{what} does not exist", kind="missing-file")]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(str(path), None, "", f"cannot read {what}: {getattr(exc, 'strerror', None) or exc}",
                              kind="missing-file")]


# ------------------------------------------------------------------ pydantic errors


def clean_loc(loc: tuple[Any, ...]) -> FieldPath:
    """Pydantic locations with aliases and without union-tag noise ('for_' → 'for')."""
    out: list[str | int] = []
    for part in loc:
        if part == "for_":
            part = "for"
        if isinstance(part, str) and ("[" in part or part.startswith("function-")):
            continue
        out.append(part)
    return tuple(out)


def model_in(annotation: Any, *, records: bool = False) -> Any:
    """The model inside `X`, `X | None`, `list[X]`, `dict[str, X]`, if any; with `records`,
    a record dataclass validated the same way (a scenario's faults: chaos' PlannedFault) too."""
    if isinstance(annotation, type) and (issubclass(annotation, BaseModel)
                                         or (records and dataclasses.is_dataclass(annotation))):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, dict, tuple, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = model_in(arg, records=records)
            if found is not None:
                return found
    return None


def record_fields(cls: type) -> dict[str, Any]:
    """Field name as written in files -> its annotation (with its metadata), for a model or a
    record dataclass (whose alias, e.g. a fault's `for`, is in `Annotated[..., Field(alias=...)]`)."""
    if issubclass(cls, BaseModel):
        return {f.alias or name: f.annotation for name, f in cls.model_fields.items() if not f.exclude}
    hints = typing.get_type_hints(cls, include_extras=True)
    out = {}
    for f in dataclasses.fields(cls):
        meta = getattr(hints[f.name], "__metadata__", ())
        alias = next((m.alias for m in meta if isinstance(m, FieldInfo) and m.alias), None)
        out[alias or f.name] = hints[f.name]
    return out


def fields_at(model: type[BaseModel], path: FieldPath) -> list[str] | None:
    """The field names (as written in files) the model accepts at `path`; None if unknown there."""
    current: type | None = model
    for part in path:
        if current is None:
            return None
        if isinstance(part, int):
            continue
        annotation = record_fields(current).get(str(part))
        if annotation is None:
            # a dict key (a service name, a link name) below a dict-of-models field
            continue
        current = model_in(annotation, records=True)
    if current is None:
        return None
    return list(record_fields(current))


def _expected(err: dict[str, Any], model: type[BaseModel], loc: FieldPath, what: str) -> tuple[str, str | None]:
    """(message, hint) for one pydantic error, in our words."""
    kind = err.get("type")
    msg = str(err.get("msg", "invalid value"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):  # a model's, a record's (a fault)
        known = fields_at(model, loc[:-1]) or []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else (f"known fields here: {', '.join(known)}" if known else None)
        return f"unknown field (not part of the {what} schema)", hint
    if kind == "missing":
        return "required field is missing", None
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str((err.get("ctx") or {}).get("expected", "")))
        close = difflib.get_close_matches(str(err.get("input")), choices, n=1, cutoff=0.6)
        return f"expected one of {', '.join(choices)}", (f"did you mean '{close[0]}'?" if close else None)
    return msg, None


def schema_problems(exc: ValidationError, doc: YamlDoc, model: type[BaseModel], what: str) -> list[Problem]:
    """One Problem per pydantic error, at the line of its field."""
    out = []
    for err in exc.errors():
        loc = clean_loc(tuple(err.get("loc", ())))
        message, hint = _expected(err, model, loc, what)
        got = err.get("input")
        if err.get("type") != "missing" and got is not None and not isinstance(got, (dict, list)):
            message += f" (got {got!r})"
        out.append(Problem(doc.source, doc.line_of(loc), dotted(loc) or "(top level)", message, hint))
    return out


def validate_model(doc: YamlDoc, model: type[BaseModel], what: str) -> tuple[Any, list[Problem]]:
    """`model` validated from the document, or None with one Problem per schema error."""
    try:
        return model.model_validate(doc.data), []
    except ValidationError as exc:
        return None, schema_problems(exc, doc, model, what)


def problem_from_message(doc: YamlDoc, text: str, *, hint: str | None = None,
                         place: Callable[[FieldPath], FieldPath] = lambda path: path) -> Problem:
    """A problem from another module's error text that starts with a dotted field path
    (chaos' `faults[0].link: ...`), at that field's line; `place` maps the path onto the file."""
    path, message = split_field(text)
    path = place(path)
    return Problem(doc.source, doc.line_of(path), dotted(path), message, hint)
