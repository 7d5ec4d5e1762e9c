"""Performance and quality benchmarks. ``python -m benchmarks [NAME ...]`` runs them and prints tables."""
