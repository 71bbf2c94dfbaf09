"""Errors of the baselines package."""


class WeightsUnavailableError(RuntimeError):
    """A baseline was asked for without real weights (and random weights were not allowed)."""
