"""Improved GAN embeddings: pooled mid-level D features, PCA-whitening, an in-graph colour cue."""
