"""The web console: officer review, legal review, the command center's live alerts."""

from .app import Console, create_app

__all__ = ["Console", "create_app"]
