"""Benchmarks and load tests: run from a checkout with ``python -m bench``, never shipped as
application commands. Each prints its figures against its goal; none is a test."""
