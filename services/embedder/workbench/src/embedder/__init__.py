"""Image embedders: train (InfoGAN, DCGAN), import ImageNet CNNs, export and serve them.

Serving speaks the TensorFlow Serving API over the same model repository.
"""
