"""Benchmark of blobsvc against nginx on the same machine: ``python -m bench``."""
