"""Benchmarks of leruli-prefect against what the machine allows (`make bench`); see bench/RESULTS.md."""
