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
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kugeldrill.ground.errors import ConfigError
from kugeldrill.ground.netguard import require_loopback

SERVICE_NAMES = ("account", "terminal", "master-data", "cart", "report", "journal", "stock")


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
    # other logs kept with the run (copied to logs/<name>.log, never parsed): the sidecars' own
    # lines (`sidecar-report`) are what a reader and a known defect's evidence look at
    keep: dict[str, str] = Field(default_factory=dict)
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
    metrics: dict[str, str] = Field(default_factory=dict)  # app id -> Prometheus URL


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

    def check_placeholders(self) -> None:
        """Every `{name}` of every command a target uses has a value (caught at load time)."""
        for target, spec in self.targets.items():
            known = set(BUILTIN_PLACEHOLDERS) | set(spec.vars)
            for action in (*PROCESS_ACTIONS, *PROCESS_QUERIES):
                argv = self.command(target, action) or []
                for arg in argv:
                    for name in PLACEHOLDER_RE.findall(arg):
                        if name not in known:
                            raise ConfigError(f"processes: the {action} command of {target} uses {{{name}}}, "
                                              f"which {target} does not define (vars: {', '.join(sorted(spec.vars)) or 'none'})")

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
    mode: Literal["api_key", "jwt"] = "jwt"
    username: str = "admin"
    password: str = "admin"
    tenant_id: str | None = None


class TargetFile(_Strict):
    name: str
    description: str = ""
    allow_hosts: list[str] = Field(default_factory=list)
    services: dict[str, str]
    auth: AuthSpec = Field(default_factory=AuthSpec)
    toxiproxy: ToxiproxySpec | None = None
    links: dict[str, LinkSpec] = Field(default_factory=dict)
    observe: ObserveSpec = Field(default_factory=ObserveSpec)
    breaker: BreakerSpec = Field(default_factory=BreakerSpec)
    publisher: PublisherSpec = Field(default_factory=PublisherSpec)


    processes: ProcessesSpec | None = None
    path: str | None = Field(default=None, exclude=True)

    @field_validator("services")
    @classmethod
    def _known_services(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = set(value) - set(SERVICE_NAMES)
        if unknown:
            raise ValueError(f"unknown service(s) {sorted(unknown)}; expected some of {list(SERVICE_NAMES)}")
        return value

    @field_validator("links")
    @classmethod
    def _link_names(cls, value: dict[str, LinkSpec]) -> dict[str, LinkSpec]:
        for name in value:
            kind, _, app = name.partition("@")
            if kind not in ("redis", "sidecar", "app", "mongo", "http") or not app \
                    or (kind == "http") != (">" in app):
                raise ValueError(f"link name {name!r} must be <redis|sidecar|app|mongo>@<app id> "
                                 "or http@<caller>><callee>")
        return value

    def check_addresses(self) -> None:
        """Refuse any non-loopback address not listed in allow_hosts (before any traffic)."""
        allow = self.allow_hosts
        for name, url in self.services.items():
            require_loopback(url, allow_hosts=allow, what=f"service {name} URL")
        if self.toxiproxy:
            require_loopback(self.toxiproxy.api, allow_hosts=allow, what="Toxiproxy API")
        for name, link in self.links.items():
            require_loopback(link.upstream, allow_hosts=allow, what=f"upstream of link {name}")
            require_loopback(link.listen, allow_hosts=allow, what=f"listen address of link {name}")
        if self.observe.redis_url:
            require_loopback(self.observe.redis_url, allow_hosts=allow, what="observation Redis URL")
        if self.observe.mongodb_url:
            require_loopback(self.observe.mongodb_url, allow_hosts=allow, what="observation MongoDB URL")
        for app, url in self.observe.metrics.items():
            require_loopback(url, allow_hosts=allow, what=f"metrics URL of {app}")


def _format_validation(path: Path, err: ValidationError) -> str:
    lines = [f"{path}: invalid target file"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  {loc}: {e['msg']}")
    return "\n".join(lines)


def load_target(path: str | Path) -> TargetFile:
    """Parse and validate a target file, including the loopback rule."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"target file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML: {getattr(err, 'problem', err)}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a target file is a mapping with name, services, toxiproxy, links, observe")
    try:
        target = TargetFile.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation(path, err)) from err
    target.path = str(path)
    target.check_addresses()
    if target.processes is not None:
        try:
            target.processes.check_placeholders()
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None
    return target


def dump_target(target: TargetFile) -> str:
    return yaml.safe_dump(target.model_dump(exclude_none=True, exclude={"path"}), sort_keys=False)
