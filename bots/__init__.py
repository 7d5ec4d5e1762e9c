"""Platform adapters (terminal, Slack, Telegram) and the ``askdesk`` CLI.

Each adapter only translates between its platform and the core's message types.
"""
