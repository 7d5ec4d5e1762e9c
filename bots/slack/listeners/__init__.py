"""The Bolt listeners, one module per kind of payload, registered on the app the bolt way.

Kept apart from :class:`bots.slack.app.SlackBot` so that what Slack sends (and how Bolt hands it
over: ``ack``, ``body``, ``event``, ``command``, ``action``, ``respond``, injected by parameter
name) is read in one place, and the bot keeps only the workflow:

- :mod:`~bots.slack.listeners.events`: ``app_mention``, ``message``, and a catch-all for the rest;
- :mod:`~bots.slack.listeners.commands`: ``/ask`` and ``/askdesk``;
- :mod:`~bots.slack.listeners.actions`: 👍/👎, "Talk to a person", and Close.

Each listener parses the payload, acknowledges it, and calls the bot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_bolt.async_app import AsyncApp

from bots.slack.listeners import actions, commands, events

if TYPE_CHECKING:
    from bots.slack.app import SlackBot


def register_listeners(app: AsyncApp, bot: SlackBot) -> None:
    """Add askdesk's listeners to ``app``, in the order Bolt tries them."""
    events.register(app, bot)
    commands.register(app, bot)
    actions.register(app, bot)
    # Last: it matches every event type, so it only gets the ones nothing above listens to.
    events.register_catch_all(app)


__all__ = ["register_listeners"]
