"""Telegram adapter: ``askdesk serve telegram`` (long polling or webhook).

Translation only: Telegram updates become :class:`core.messages.IncomingMessage`, the
core's answer stream becomes a Telegram message that is edited as text arrives.

- ``config``   — the ``TELEGRAM_*`` environment variables, read in this one place.
- ``render``   — the model's Markdown → Telegram HTML, splitting, source links.
- ``delivery`` — sending: typing action, streamed edits, plain-text fallback.
- ``app``      — the python-telegram-bot ``Application`` and its handlers: questions, feedback
  buttons, hand-off to the support group, ``/teach``. Conversation context is the core's store.
- ``serve``    — start-up, polling/webhook, shutdown, exit codes.
"""
