"""Outputs for people and CI: live console, verdict JSON, JUnit XML, HTML with plots."""
