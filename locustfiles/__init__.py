"""Locust users that drive Kugelpos' API shapes and record every operation."""
