"""Target files: how to reach, fault and observe a Kugelpos deployment kugeldrill did not start.

A target file (targets/*.yaml) names every service's base URL, the Toxiproxy API, the
link map, the breaker parameters to judge against, the observation sources the
checkers may use (log files or a log command, the Redis URL, optionally MongoDB), and —
for process faults — the processes and the commands that kill, pause and start them
(`processes:`, see kugeldrill.target_processes).

Every address must be loopback unless listed under `allow_hosts`: a target file is the
one place where a user can knowingly widen kugeldrill's reach.
"""

from __future__ import annotations

import re
import typing
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from kugeldrill.ground.errors import NotLoopbackError
from kugeldrill.ground.netguard import require_loopback, split_host
from kugeldrill.yamlfile import (FieldPath, Problem, YamlDoc, parse_yaml, raise_problems, read_text, sort_problems,
                                 validate_model)

ServiceName = Literal["account", "terminal", "master-data", "cart", "report", "journal", "stock"]
SERVICE_NAMES: tuple[str, ...] = typing.get_args(ServiceName)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class LinkSpec(_Strict):
    listen: str
    upstream: str


class ToxiproxySpec(_Strict):
    api: str
    # populate: kugeldrill creates/updates the link proxies with /populate;
    # existing: the proxies must already exist (e.g. from Toxiproxy's -config file).
    manage_links: Literal["populate", "existing"] = "populate"


class LogSource(_Strict):
    """Where the services' plain-text logs can be read after a drill."""

    files: dict[str, str] = Field(default_factory=dict)  # app id -> log file path
    command: list[str] | None = None  # e.g. docker compose logs --no-color --timestamps
    cwd: str | None = None  # where the command runs; relative paths are relative to the target file
    command_timeout_seconds: float = 60.0

    def resolved_cwd(self, target_path: str | None) -> str | None:
        if self.cwd is None or Path(self.cwd).is_absolute() or not target_path:
            return self.cwd
        return str((Path(target_path).parent / self.cwd).resolve())


class ObserveSpec(_Strict):
    logs: LogSource = Field(default_factory=LogSource)
    redis_url: str | None = None
    mongodb_url: str | None = None


class BreakerSpec(_Strict):
    """The breaker the target really has (Kugelpos: cumulative failures, >=61 s, unlimited half-open).

    half_open: trials admitted per HALF_OPEN episode ("single" = 1, a number, or "unlimited").
    max_call_seconds: the longest one Dapr call can take (client timeout x attempts + retry
    delays; Kugelpos: 3 x 30 s + 3 x 1 s). Logs say when a call ended, not when it was
    admitted: a call logged while OPEN this soon after the opening may have been in flight.
    """

    threshold: int = Field(default=3, ge=1)
    reset_seconds: float = Field(default=60.0, ge=0)
    half_open: Literal["single", "unlimited"] | int = "single"
    failures: Literal["consecutive", "cumulative"] = "consecutive"
    max_call_seconds: float = Field(default=93.0, gt=0)

    @field_validator("half_open")
    @classmethod
    def _trials(cls, value: str | int) -> str | int:
        if isinstance(value, int) and value < 1:
            raise ValueError("half_open must be 'single', 'unlimited' or a number of trials >= 1")
        return value

    @property
    def half_open_max_calls(self) -> int | None:
        """kugeldrill.checkers.params.BreakerParams.half_open_max_calls (None: any number allowed)."""
        if self.half_open == "unlimited":
            return None
        return 1 if self.half_open == "single" else int(self.half_open)


class PublisherSpec(_Strict):
    """How the deployment's publishers heal a failed publish: the outbox republish job.

    Kugelpos republishes anything undelivered every 5 minutes (cron minute=*/5), once it is
    5 minutes old, for 24 hours. An event whose publish failed during a drill is *pending*
    until that run, not missing; a drill either waits for it (expect.convergence.
    wait_for_republish) or reports it as unknown with this schedule as the reason.
    republish_interval_seconds: null when the deployment has no republish job.
    """

    republish_interval_seconds: float | None = Field(default=300.0, gt=0)
    republish_min_age_seconds: float = Field(default=300.0, ge=0)
    republish_window_seconds: float = Field(default=24 * 3600.0, gt=0)


PROCESS_ACTIONS = ("kill", "pause", "resume", "stop", "start")
PROCESS_QUERIES = ("pids", "running", "ready")  # optional: pids for the record, verification, readiness
PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
BUILTIN_PLACEHOLDERS = ("target", "kind", "app", "grace")


class ProcessTargetSpec(_Strict):
    """One process a drill may kill or pause: values for the command placeholders, and
    commands of its own where they differ from the shared ones."""

    vars: dict[str, str] = Field(default_factory=dict)  # e.g. {container: kugelpos-cart-1}
    commands: dict[str, list[str]] = Field(default_factory=dict)


class ProcessesSpec(_Strict):
    """Command templates for process faults (kill, pause, restart) on a deployment.

    A template is an argv list; `{name}` is replaced by the target's `vars`, or by
    `target` (app@cart), `kind` (app), `app` (cart) and, for `stop`, `grace` (seconds).
    Other braces (e.g. docker's `{{.State.Pid}}`) are left alone. Actions: kill, pause,
    resume, stop, start; queries (optional): `pids` (prints pids), `running` (exit 0 when
    the process runs and is not paused — used to verify heals), `ready` (exit 0 when it
    serves). A fault whose kind needs an action with no command is refused before the drill.
    """

    commands: dict[str, list[str]] = Field(default_factory=dict)
    targets: dict[str, ProcessTargetSpec] = Field(default_factory=dict)
    cwd: str | None = None  # relative to the target file
    timeout_seconds: float = Field(default=60.0, gt=0)

    @field_validator("commands")
    @classmethod
    def _known_commands(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        return _check_commands(value, "processes.commands")

    @field_validator("targets")
    @classmethod
    def _target_names(cls, value: dict[str, ProcessTargetSpec]) -> dict[str, ProcessTargetSpec]:
        for name, spec in value.items():
            kind, _, app = name.partition("@")
            if not (name == "redis" or (kind in ("sidecar", "app") and app)):
                raise ValueError(f"process target {name!r} must be redis, sidecar@<app id> or app@<app id>")
            _check_commands(spec.commands, f"processes.targets.{name}.commands")
        return value

    def command(self, target: str, action: str) -> list[str] | None:
        spec = self.targets.get(target)
        if spec is not None and action in spec.commands:
            return spec.commands[action]
        return self.commands.get(action)

    def placeholder_problems(self) -> list[tuple[FieldPath, str]]:
        """Every `{name}` of every command a target uses must have a value: (field, problem) pairs."""
        out: list[tuple[FieldPath, str]] = []
        for target, spec in self.targets.items():
            known = set(BUILTIN_PLACEHOLDERS) | set(spec.vars)
            for action in (*PROCESS_ACTIONS, *PROCESS_QUERIES):
                own = action in spec.commands
                argv = self.command(target, action) or []
                for arg in argv:
                    for name in PLACEHOLDER_RE.findall(arg):
                        if name not in known:
                            path: FieldPath = (("processes", "targets", target, "commands", action) if own
                                               else ("processes", "commands", action))
                            out.append((path, f"the {action} command of {target} uses {{{name}}}, which {target} "
                                              f"does not define (vars: {', '.join(sorted(spec.vars)) or 'none'})"))
        return out

    def resolved_cwd(self, target_path: str | None) -> str | None:
        if self.cwd is None or Path(self.cwd).is_absolute() or not target_path:
            return self.cwd
        return str((Path(target_path).parent / self.cwd).resolve())


def _check_commands(value: dict[str, list[str]], where: str) -> dict[str, list[str]]:
    for action, argv in value.items():
        if action not in (*PROCESS_ACTIONS, *PROCESS_QUERIES):
            raise ValueError(f"{where}: unknown command {action!r}; expected some of "
                             f"{', '.join((*PROCESS_ACTIONS, *PROCESS_QUERIES))}")
        if not argv or not all(isinstance(a, str) and a for a in argv):
            raise ValueError(f"{where}.{action} must be a non-empty list of strings (an argv)")
    return value


class AuthSpec(_Strict):
    """The tenant administrator provisioning signs in as (terminals, staff, items)."""

    username: str = "admin"
    password: str = "admin"
    tenant_id: str | None = None


def addresses_of(data: dict[str, Any]) -> list[tuple[FieldPath, str, str]]:
    """(field, address, what it is) of every address in a target file's mapping — also of one
    that failed the schema, so that a bad host is reported with the other problems."""
    def mapping(value: Any) -> dict[str, Any]:
        return value if isinstance(value, dict) else {}

    out: list[tuple[FieldPath, str, str]] = [(("services", name), url, f"service {name} URL")
                                             for name, url in mapping(data.get("services")).items()]
    out.append((("toxiproxy", "api"), mapping(data.get("toxiproxy")).get("api"), "Toxiproxy API"))
    for name, link in mapping(data.get("links")).items():
        out.append((("links", name, "upstream"), mapping(link).get("upstream"), f"upstream of link {name}"))
        out.append((("links", name, "listen"), mapping(link).get("listen"), f"listen address of link {name}"))
    observe = mapping(data.get("observe"))
    out.append((("observe", "redis_url"), observe.get("redis_url"), "observation Redis URL"))
    out.append((("observe", "mongodb_url"), observe.get("mongodb_url"), "observation MongoDB URL"))
    return [(path, address, what) for path, address, what in out if isinstance(address, str) and address]


class TargetFile(_Strict):
    """A Kugelpos deployment kugeldrill did not start: how to reach it (services, auth), fault it
    (toxiproxy, links, processes), judge it (breaker, publisher) and observe it (observe)."""

    name: str
    description: str = ""
    allow_hosts: list[str] = Field(default_factory=list)
    services: dict[ServiceName, str]  # app id -> base URL
    auth: AuthSpec = Field(default_factory=AuthSpec)
    toxiproxy: ToxiproxySpec | None = None
    links: dict[str, LinkSpec] = Field(default_factory=dict)
    observe: ObserveSpec = Field(default_factory=ObserveSpec)
    breaker: BreakerSpec = Field(default_factory=BreakerSpec)
    publisher: PublisherSpec = Field(default_factory=PublisherSpec)
    processes: ProcessesSpec | None = None
    # Where the file was read from (set by the loader; not part of the file).
    path: SkipJsonSchema[str | None] = Field(default=None, exclude=True)

    @field_validator("links")
    @classmethod
    def _link_names(cls, value: dict[str, LinkSpec]) -> dict[str, LinkSpec]:
        for name in value:
            kind, _, app = name.partition("@")
            if kind not in ("redis", "sidecar", "app") or not app:
                raise ValueError(f"link name {name!r} must be <redis|sidecar|app>@<app id>")
        return value

    def addresses(self) -> list[tuple[FieldPath, str, str]]:
        """(field, address, what it is) of every address kugeldrill would send traffic to."""
        return addresses_of(self.model_dump())

    def check_addresses(self) -> None:
        """Refuse any non-loopback address not listed in allow_hosts (before any traffic)."""
        for _path, address, what in self.addresses():
            require_loopback(address, allow_hosts=self.allow_hosts, what=what)


REMOVED_FIELDS = {
    ("auth", "mode"): "auth.mode was removed: nothing read it; how the load authenticates is the scenario's "
                      "load.config.auth (api_key or jwt)",
    ("observe", "metrics"): "observe.metrics was removed: no checker read it; delete the line",
}
EXAMPLE = "targets/kugelpos-compose.yaml, or write one with 'kugeldrill target from-stack'"
SCHEMA_HINT = "'kugeldrill schema target' prints the JSON Schema; docs/targets.md describes every field"


def _removed(problems: list[Problem]) -> list[Problem]:
    """Unknown-field problems for fields older target files still carry, with what to do instead."""
    out = []
    for p in problems:
        why = REMOVED_FIELDS.get(tuple(p.field.split(".")))
        out.append(replace(p, hint=why) if why and p.message.startswith("unknown field") else p)
    return out


def _host_problems(doc: YamlDoc) -> list[Problem]:
    out = []
    allow = doc.data.get("allow_hosts")
    allow = [str(h) for h in allow] if isinstance(allow, list) else []
    allow_line = doc.line_of(("allow_hosts",)) if doc.has(("allow_hosts",)) else None
    for path, address, what in addresses_of(doc.data):
        try:
            require_loopback(address, allow_hosts=allow, what=what)
        except NotLoopbackError:
            try:
                host = split_host(address)
            except NotLoopbackError as exc:
                out.append(doc.problem(path, str(exc)))
                continue
            where = f"add it to allow_hosts (line {allow_line})" if allow_line else f"add 'allow_hosts: [{host}]'"
            out.append(doc.problem(path, f"host {host!r} of {what} {address!r} is not loopback (127.0.0.0/8, ::1) "
                                         "and not listed under allow_hosts", kind="host",
                                   hint=f"kugeldrill only drills local stacks unless told: if you mean to drill "
                                        f"{host}, {where}"))
    return out


def check_target_text(text: str, source: str) -> tuple[TargetFile | None, list[Problem]]:
    """The validated target and every problem found (errors and warnings), nothing raised."""
    doc, problems = parse_yaml(text, source, "target file", EXAMPLE)
    if doc is None:
        return None, problems
    target, schema = validate_model(doc, TargetFile, "target file")
    problems += _removed(schema) + _host_problems(doc)
    if target is None:
        return None, sort_problems(problems)
    target.path = source
    if target.processes is not None:
        problems += [doc.problem(path, message) for path, message in target.processes.placeholder_problems()]
    if target.links and target.toxiproxy is None:
        problems.append(doc.problem(("links",), "links are declared but no 'toxiproxy' API is given: link faults "
                                                "cannot be applied", severity="warning",
                                    hint="add toxiproxy: {api: http://127.0.0.1:8474}"))
    return target, sort_problems(problems)


def check_target_file(path: str | Path) -> tuple[TargetFile | None, list[Problem]]:
    """check_target_text of a file; a missing or unreadable file is a problem too."""
    text, problems = read_text(Path(path), "target file")
    if text is None:
        return None, problems
    return check_target_text(text, str(path))


def load_target(path: str | Path) -> TargetFile:
    """Parse and validate a target file, including the loopback rule; FileProblems lists every problem."""
    target, problems = check_target_file(path)
    raise_problems(f"target file {path} is invalid:", problems, hint=SCHEMA_HINT)
    assert target is not None
    return target


def dump_target(target: TargetFile) -> str:
    return yaml.safe_dump(target.model_dump(exclude_none=True, exclude={"path"}), sort_keys=False)
