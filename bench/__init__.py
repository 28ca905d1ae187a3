"""Benchmarks (see bench/README.md); a package so scripts can share helpers."""
