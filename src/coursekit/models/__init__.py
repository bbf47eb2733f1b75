"""Model definitions in torchvision's style: block classes plus builder functions.

One file per family (MLP, LeNet5, ResNet); layers they share come from :mod:`coursekit.scratch`.
"""
