"""Verdicts: breaker transitions, duplicate processing, fan-out counts.

Checkers read normalised records (checkers.model) produced by adapters; they never
import the stand-in (stack), so the same checkers judge a real Kugelpos deployment.
"""
