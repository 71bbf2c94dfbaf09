"""The embedder workbench: train GANs, import ImageNet CNNs, fit heads, export, evaluate.

One CLI, ``python -m embedder`` (see :mod:`embedder.cli`). Serving the exported model repository
is the other package, ``embedder_server`` (TF Serving's API), which never imports this one.
"""
