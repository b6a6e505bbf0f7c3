"""The embedded stand-in: Kugelpos-shaped services and a Dapr-compatible sidecar on real Redis."""
