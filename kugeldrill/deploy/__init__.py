"""Real deployments: checking a target file, deriving one from a running stand-in, and the
Compose overlay that inserts Toxiproxy into Kugelpos."""
