"""Embedding heads on a GAN discriminator; the default is ``model.DEFAULT_HEAD``."""
