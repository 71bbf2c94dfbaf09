"""Catalogue loading, image preprocessing and the tf.data pipeline."""
