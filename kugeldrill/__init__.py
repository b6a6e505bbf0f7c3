"""kugeldrill: chaos and load drills for Kugelpos (Dapr sidecars on Redis).

The data path reads top-down: scenario -> stack or target -> load + chaos ->
history + timeline -> checkers -> reports. This package holds the CLI and the
orchestration; the other top-level packages (stack, chaos, locustfiles, checkers,
reports) each do one of those jobs.
"""

__version__ = "0.1.0"
