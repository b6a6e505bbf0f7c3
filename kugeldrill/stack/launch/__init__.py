"""The process launcher the embedded stack and the native Kugelpos runner share: one job per module.

* `launcher` — `Launcher`: start (servers, recorded processes, sidecars behind their apps),
  the health wait, supervision and stop, with `LaunchSettings` saying how one deployment
  words and paces its start;
* `deployment` — `RecordedDeployment`, the base of both deployments (state file, URLs,
  re-attaching, process faults, `down`);
* `process` — `ManagedProcess` (one child with its log) and `Command` (the record that runs it again);
* `servers` — redis-server and toxiproxy-server;
* `plan`, `links` — the topology both share: app ids, ports, one Toxiproxy proxy per link;
* `daprd` — the Dapr sidecar of one app (real daprd: its command line, the binary for an ack
  model, one started on its own);
* `health` — probes and the wait; `status` — what runs and answers; `failures` — the start error;
* `state` — the state file; `procs` — pid checks; `stop` — stop order and leftover ports;
* `supervisor` — crash restarts; `control` — process faults from the recorded commands.

What runs, with which variables and links, is each deployment's wiring: `stack.embedded`
(the stand-in services) and `stack.native` (the real Kugelpos code).
"""
