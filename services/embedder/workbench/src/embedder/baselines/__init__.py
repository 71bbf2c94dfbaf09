"""ImageNet CNN baselines as feature extractors; CLI: ``python -m embedder baselines``."""
