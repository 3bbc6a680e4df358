"""Benchmarks (`make bench`): ratios measured in one run, never absolute targets in tests."""
