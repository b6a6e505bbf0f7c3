"""Pieces of the stand-in launcher (`stack.launcher`), one job per module: `options`
(StackOptions), `plan` (app ids, ports, links), `sidecars` (which Dapr sidecar, and how to run
it for one app: real daprd or the stand-in's), `single` (one sidecar started on its own),
`apps` (what runs per app), `links` (Toxiproxy wiring), `start` (the start-up sequence),
`health` (probes and the wait), `status`, `stop`, `state` (stack.json), `procs` (pid checks),
`supervisor` (crash restarts), `running` (handles of what one Stack object started), `recorded`
(the state-file-backed base the stand-in and the native runner share), and
`failures` (the start error and its evidence). The launcher itself reads as the public entry
points (`Stack.up/down/status/from_state_file`) and nothing else."""
