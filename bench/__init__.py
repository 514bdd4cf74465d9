"""Benchmarks: each script is run by hand and prints figures for bench/RESULTS.md."""
