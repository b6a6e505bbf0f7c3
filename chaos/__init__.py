"""Faults: a Toxiproxy client, named links, a fault vocabulary, a timeline, and healing."""
