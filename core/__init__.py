"""askdesk core: platform-free message types, the answering pipeline, config and storage.

Nothing in this package imports a chat-platform SDK; adapters live in ``bots/``.
"""

__version__ = "0.1.0"
