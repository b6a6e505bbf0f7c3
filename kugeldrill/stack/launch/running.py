"""The processes one `Stack` object started itself, by state key (`services:cart`,
`sidecars:cart`, `supervisor`) and server name (`redis`, `toxiproxy`).

A re-attached stack (`Stack.from_state_file`) has none of these: it only knows pids from
stack.json, which `stop` handles through the pid and command-line checks of `procs`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kugeldrill.stack.launch.supervisor import Supervisor
from kugeldrill.stack.servers import ManagedProcess, RedisServer, ToxiproxyServer


@dataclass
class Running:
    handles: dict[str, ManagedProcess] = field(default_factory=dict)
    servers: dict[str, RedisServer | ToxiproxyServer] = field(default_factory=dict)
    supervisor: Supervisor | None = None
