"""Benchmarks behind `edgecascade bench`: they measure and print, they never assert."""
