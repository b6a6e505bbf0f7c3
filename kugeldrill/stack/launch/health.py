"""Health probes for every part of a launched deployment, and the wait until all of them pass.

A probe returns None when its part is healthy and a short description of what it saw
otherwise (pending: the wait goes on). A state that cannot heal by waiting raises
`NeverHealthy` so the start fails at once, naming the part, instead of after the timeout.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
import httpx

from kugeldrill.ground.netguard import require_loopback
from kugeldrill.ground.errors import DrillError
from kugeldrill.stack.launch.failures import STACK_START, StartFailure, log_says_port_taken
from kugeldrill.stack.launch.plan import HOST, SUBSCRIBERS
from kugeldrill.stack.launch.state import StateFile
from kugeldrill.stack.launch.process import ManagedProcess, log_tail

PROBE_TIMEOUT = 1.0  # seconds per health probe; the overall wait is StackOptions.health_timeout

Probe = Callable[[httpx.Client], "str | None"]


class NeverHealthy(Exception):
    """A probe saw a state that waiting will not change."""


def service_probe(url: str) -> Probe:
    health = require_loopback(url, what="service URL") + "/health"

    def probe(client: httpx.Client) -> str | None:
        try:
            resp = client.get(health)
        except httpx.HTTPError as exc:
            return f"GET {health}: {type(exc).__name__}"
        if resp.status_code != 200:
            return f"GET {health} answered {resp.status_code}"
        try:
            body = resp.json()
        except ValueError:
            return f"GET {health} answered a non-JSON body"
        if body.get("status") != "healthy":
            return f"GET {health}: status {body.get('status')!r} {body.get('checks', '')}"
        return None

    return probe


def service_answers(url: str) -> Probe:
    """The service's HTTP server is up (any answer to /health): its sidecar may start.

    daprd waits for its app port to accept TCP, then reads `/dapr/subscribe` once (with a
    few retries over ~10 s) and never again. Its app port is the `app@X` proxy, which accepts
    TCP before the app listens, so the launcher must not start a sidecar before its app answers.
    """
    health = require_loopback(url, what="service URL") + "/health"

    def probe(client: httpx.Client) -> str | None:
        try:
            client.get(health)
        except httpx.HTTPError as exc:
            return f"GET {health}: {type(exc).__name__}"
        return None

    return probe


def sidecar_probe(url: str, expect_subscriptions: bool) -> Probe:
    """`/v1.0/healthz` is 204 once the sidecar runs (daprd: after it read its app's
    subscriptions); a subscriber's sidecar must then list at least one subscription."""
    base = require_loopback(url, what="sidecar URL")

    def probe(client: httpx.Client) -> str | None:
        try:
            resp = client.get(base + "/v1.0/healthz")
        except httpx.HTTPError as exc:
            return f"GET {base}/v1.0/healthz: {type(exc).__name__}"
        if resp.status_code not in (200, 204):
            return f"GET {base}/v1.0/healthz answered {resp.status_code}"
        if expect_subscriptions:
            try:
                meta = client.get(base + "/v1.0/metadata")
            except httpx.HTTPError as exc:
                return f"GET {base}/v1.0/metadata: {type(exc).__name__}"
            if meta.status_code == 200:
                try:
                    body = meta.json()
                except ValueError:
                    return f"GET {base}/v1.0/metadata answered a non-JSON body"
                # daprd leaves the key out when there are none.
                subs = body.get("subscriptions") if isinstance(body, dict) else None
                if not subs:
                    # Both sidecars read /dapr/subscribe before they report healthy, and never again.
                    raise NeverHealthy("the sidecar is running without subscriptions: its app did not answer "
                                       "GET /dapr/subscribe while the sidecar started")
        return None

    return probe


def redis_probe(port: int, host: str = HOST) -> Probe:
    def probe(_client: httpx.Client) -> str | None:
        try:
            with socket.create_connection((host, port), timeout=PROBE_TIMEOUT) as sock:
                sock.settimeout(PROBE_TIMEOUT)
                sock.sendall(b"PING\r\n")
                answer = sock.recv(64)
        except OSError as exc:
            return f"redis PING on {host}:{port}: {exc}"
        return None if answer.startswith(b"+PONG") else f"redis answered {answer!r} to PING"

    return probe


def port_probe(port: int, host: str = HOST) -> Probe:
    """The server accepts TCP on its port (one that has no health API of its own)."""
    def probe(_client: httpx.Client) -> str | None:
        try:
            with socket.create_connection((host, port), timeout=PROBE_TIMEOUT):
                return None
        except OSError as exc:
            return f"connect {host}:{port}: {exc}"

    return probe


def toxiproxy_probe(api: str) -> Probe:
    def probe(client: httpx.Client) -> str | None:
        try:
            resp = client.get(require_loopback(api, what="Toxiproxy API") + "/version")
        except httpx.HTTPError as exc:
            return f"GET {api}/version: {type(exc).__name__}"
        return None if resp.status_code == 200 else f"GET {api}/version answered {resp.status_code}"

    return probe


def check_started(handle: ManagedProcess, scan_log: bool, failure: StartFailure = STACK_START) -> None:
    """Raise the launcher's start error if the process exited, or (with `scan_log`) logged a taken port."""
    if not handle.alive():
        code = handle.returncode
        raise failure.at(handle.name, f"the process exited with code {code} before it was healthy; "
                                      f"last log lines ({handle.log_path}):\n{log_tail(handle.log_path, failure.tail_lines)}")
    if scan_log and log_says_port_taken(handle.log_path):
        # Some servers keep running after their listener failed; do not wait for them.
        raise failure.at(handle.name, f"a port it was given was taken (address already in use); "
                                      f"last log lines ({handle.log_path}):\n{log_tail(handle.log_path, failure.tail_lines)}")


def log_scans(enabled: bool, every: float = 0.5) -> Callable[[], bool]:
    """A poll loop's "scan the logs for a taken port this round?": yes at most every `every`
    seconds (reading log tails each round would cost more than the probes), never if disabled."""
    next_at = 0.0

    def due() -> bool:
        nonlocal next_at
        if not enabled or time.monotonic() < next_at:
            return False
        next_at = time.monotonic() + every
        return True

    return due


def wait_healthy(file: StateFile, handles: dict[str, ManagedProcess], timeout: float, *,
                 service_probe_for: Callable[[str], Probe] = service_probe, failure: StartFailure = STACK_START,
                 scan_logs: bool = True, interval: float = 0.1, probe_timeout: float = PROBE_TIMEOUT,
                 say: Callable[[str], None] | None = None) -> None:
    """Poll every service and sidecar until healthy; a part that exits, cannot bind, or stays
    unhealthy fails the start. Records `healthy_after` (seconds since start) per part.

    The native runner passes its own service probe (Kugelpos' `/health`), its error wording,
    no log scan, a slower poll and a longer probe timeout; `say` reports each part as it
    becomes healthy."""
    pending: dict[str, Probe] = {}
    # Sidecars first: a service's health includes its sidecar, so a sidecar problem is the cause.
    for app, entry in file.state["sidecars"].items():
        pending[f"sidecars:{app}"] = sidecar_probe(entry["url"], app in SUBSCRIBERS)
    for app, entry in file.state["services"].items():
        pending[f"services:{app}"] = service_probe_for(entry["url"])
    last: dict[str, str] = {}
    t0 = time.monotonic()
    deadline = t0 + timeout
    scan_due = log_scans(scan_logs)
    with httpx.Client(timeout=probe_timeout) as client:
        while pending:
            scan_now = scan_due()
            for key in list(pending):
                handle = handles[key]
                check_started(handle, scan_now, failure)
                try:
                    problem = pending[key](client)
                except NeverHealthy as exc:
                    raise failure.at(handle.name, f"{exc}; last log lines ({handle.log_path}):\n"
                                                  f"{log_tail(handle.log_path, failure.tail_lines)}") from None
                if problem is None:
                    del pending[key]
                    group, app = key.split(":", 1)
                    if say is not None:
                        say(f"{handle.name} healthy after {time.monotonic() - t0:.1f}s")
                    file.update(lambda s, g=group, a=app: s[g][a].__setitem__(
                        "healthy_after", round(time.time() - s["started_wall"], 3)))
                else:
                    last[key] = problem
            if not pending:
                break
            if time.monotonic() > deadline:
                raise not_healthy(handles, list(pending), last, timeout, failure)
            time.sleep(interval)


def not_healthy(handles: dict[str, ManagedProcess], keys: list[str], last: dict[str, str],
                timeout: float, failure: StartFailure = STACK_START) -> DrillError:
    details = "\n".join(
        f"--- {handles[k].name}: {last.get(k, 'no answer')}; last log lines "
        f"({handles[k].log_path}):\n{log_tail(handles[k].log_path, 8)}"
        for k in keys[:3]
    )
    more = f" (and {len(keys) - 3} more)" if len(keys) > 3 else ""
    return failure.at(handles[keys[0]].name, f"not healthy within {timeout:.0f}s; "
                                             f"not healthy: {', '.join(handles[k].name for k in keys)}{more}\n{details}")
