"""Benchmarks: scripts that print ratios measured in one run (see README.md); ``common`` holds the shared helpers."""
