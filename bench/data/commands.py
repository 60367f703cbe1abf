"""CLI verbs of this concern (filled in by its issue)."""


def register(sub) -> None:
    """Add this concern's verbs to the ``bench`` subparsers."""
