"""coursekit: the tested package behind the executable deep-learning foundations textbook."""

__version__ = "0.1.0"
