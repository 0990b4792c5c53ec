"""Benchmarks of Pooled (run each as `python -m benchmarks.<name>`)."""
