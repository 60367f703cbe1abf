"""``bench doctor``: check a machine (login node or job) before a sweep."""
