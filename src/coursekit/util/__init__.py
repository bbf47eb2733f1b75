"""Small helpers every layer may use, and that know nothing of the book or of models.

Atomic file writes (:mod:`.atomic`), seeding and deterministic kernels (:mod:`.repro`), and
the choice of device (:mod:`.device`). Nothing here imports another part of coursekit.
"""
