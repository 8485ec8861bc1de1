"""Phantom data sets for demos, examples, tests and benchmarks."""
