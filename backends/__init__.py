"""Backends: each fits a spec in one system and returns a :class:`harness.results.FitResult`."""
