"""The real Kugelpos services from a checkout, run natively (no containers): `kugeldrill kugelpos up`.

Seven services from the checkout (each in a Python environment built from its own
Pipfile.lock, cached outside the checkout), a MongoDB wire-compatible in-memory server
(`mongo/`, mongo-java-server with what Kugelpos needs from a replica set), one sidecar
per Dapr-using app, Redis and Toxiproxy with the stand-in's named links. See
kugeldrill/stack/native/README.md.
"""
