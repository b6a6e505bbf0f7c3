"""The deployments kugeldrill starts itself, on one machine: the embedded stack (`embedded`: the
stand-in services, `services`, beside real daprd, Redis and Toxiproxy) and the real Kugelpos
code (`native`), both through one process launcher (`launch`)."""
