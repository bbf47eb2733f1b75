"""Model definitions in torchvision's style: block classes plus builder functions."""
