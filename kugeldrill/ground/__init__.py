"""The ground floor: what every room of kugeldrill stands on, importing nothing above it.

errors (DrillError and its kinds), netguard (the loopback rule), jsonl (crash-safe JSON
lines), jsonfile (the one way a file is replaced atomically; locked JSON state files),
durations (the one duration parser: 90s, 1m30s, 2h), ports (free loopback ports), tools
(finding external programs), clock (wall + monotonic stamps) and history (the load's operation records `Op`, with the one writer
and the one reader of `history/*.jsonl`). The stand-in, chaos, the Locust users and the
checkers import only this package and their own insides.
"""
