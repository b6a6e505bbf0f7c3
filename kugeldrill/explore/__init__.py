"""Explore and shrink: seeded random fault schedules that hunt for failures (explore), and a
minimal failing drill when one is found (shrink). Every drawn or shrunk schedule is an
ordinary scenario file; `kugeldrill run` re-runs any of them."""
