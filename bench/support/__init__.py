"""Helpers shared by the benchmarks; a subfolder, so CI's `bench/*.py` loop does not run them."""
