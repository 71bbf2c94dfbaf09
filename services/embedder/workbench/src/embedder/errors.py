"""Domain errors of the training/evaluation side (the server has its own in ``serving.errors``)."""

from __future__ import annotations


class EmbedderError(Exception):
    """Base class for errors a CLI reports without a traceback."""


class ImageError(EmbedderError):
    """An image that cannot be used; catalogue loading reports and skips it."""


class CorruptImageError(ImageError):
    """Not an image, an unsupported format, or a truncated/damaged file."""


class ImageTooLargeError(ImageError):
    """Over the pixel limit (decompression-bomb protection)."""


class CatalogError(EmbedderError):
    """A catalogue folder without usable images or with an invalid labels.csv."""


class RunError(EmbedderError):
    """A run directory that is missing, incomplete or inconsistent with the settings."""


class WeightsUnavailableError(EmbedderError):
    """A baseline was asked for without real weights (and random weights were not allowed)."""
