"""Trains and exports the image embedders (InfoGAN, DCGAN, ImageNet CNNs) and serves them over the TensorFlow Serving API."""
