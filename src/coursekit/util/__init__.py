"""Small helpers every layer may use, and that know nothing of the book or of models.

Atomic file writes (:mod:`.atomic`), seeding and deterministic kernels (:mod:`.repro`), the
choice of device (:mod:`.device`) and a wall-clock timer for figures that are shown, never
asserted (:mod:`.timing`). Nothing here imports another part of coursekit.
"""
