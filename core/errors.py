"""One small hierarchy of askdesk errors.

Every message is written for the person who must act: what failed, why, and what to do.
The CLI prints these without a traceback (``--debug`` shows it).
"""

from __future__ import annotations


class AskdeskError(Exception):
    """Base class: an error whose message is meant for a human operator."""


class ConfigError(AskdeskError):
    """A setting is missing or invalid."""


class KnowledgeBaseError(AskdeskError):
    """The knowledge base folder cannot be used (missing, empty, no readable files)."""


class IndexUnusableError(AskdeskError):
    """The search index is missing, damaged, or was built with another embedding model."""


class ModelError(AskdeskError):
    """A model could not be found or loaded."""


class GenerationError(AskdeskError):
    """The generator failed while writing an answer."""


class InvalidMessageError(AskdeskError):
    """An incoming message cannot be answered as given (empty, too long, malformed)."""
