"""From-scratch implementations that chapters and labs check against ``torch``.

Each module writes one operation the slow, readable way (convolution, pooling, activations;
later initialization, optimizers, batch norm, dropout) and names it like its ``torch`` twin.
"""
