"""Workstation side: default-model builder, benchmarks (heavy dependencies live here only)."""
