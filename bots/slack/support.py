"""The support workflow's output on Slack: posts in the support channel, replies in the customer's thread.

Implements :class:`core.support.SupportChannel`; the rules (locking, language, transcripts,
failures, storage) are :class:`core.support.SupportWorkflow`'s. Here only what Slack makes of
them: a Block Kit post per escalation with a Close button (:func:`bots.slack.blocks.support_blocks`),
the customer's new messages in that post's thread, texts to the customer's thread (or, for
``/ask``, their DM) and the post edited to show who closed it. Whatever Slack refuses, or a
connection that fails, becomes :class:`core.support.DeliveryFailed`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bots.slack.blocks import support_blocks
from bots.slack.events import reply_target
from bots.slack.render import escape
from core.store import Escalation
from core.support import DeliveryFailed


async def _deliver(method: Callable[..., Awaitable[Any]], **kwargs: Any) -> Any:
    try:
        return await method(**kwargs)
    except SlackApiError as exc:
        raise DeliveryFailed(str(exc.response.get("error"))) from exc
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc


def _post_ref(escalation: Escalation) -> tuple[str, str]:
    """The support post's channel and ts (``support_ref`` is ``CHANNEL:TS``)."""
    channel, _, ts = (escalation.support_ref or "").rpartition(":")
    return channel, ts


class SlackSupportChannel:
    """:class:`core.support.SupportChannel` for one Slack workspace and its support channel."""

    def __init__(self, client: AsyncWebClient, support_channel: str | None) -> None:
        self.client = client
        self.support_channel = support_channel

    async def post_escalation(self, escalation: Escalation, where: str | None) -> str:
        # ``where`` is not needed: the customer's place is in the conversation id (blocks.customer_place).
        headline, blocks = support_blocks(escalation)
        posted = await _deliver(self.client.chat_postMessage, channel=self.support_channel, text=headline,
                                blocks=blocks, unfurl_links=False)
        return f"{posted['channel']}:{posted['ts']}"

    async def post_under(self, escalation: Escalation, author: str | None, text: str) -> None:
        channel, ts = _post_ref(escalation)
        who = escape(author) if author else f"<@{escalation.user_id}>"
        # Escaped: no @channel pings from a customer into the support channel either.
        await _deliver(self.client.chat_postMessage, channel=channel, thread_ts=ts, unfurl_links=False,
                       text=f":speech_balloon: *{who} (customer) wrote:*\n{escape(text)}")

    async def send_to_customer(self, escalation: Escalation, text: str, heading: str | None = None, *,
                               formatted: str | None = None) -> None:
        channel, thread_ts = reply_target(escalation.conversation_id, escalation.thread_id or None)
        body = formatted if formatted is not None else escape(text)
        if heading:
            body = f":bust_in_silhouette: *{escape(heading)}*\n{body}"
        await _deliver(self.client.chat_postMessage, channel=channel, thread_ts=thread_ts, text=body,
                       unfurl_links=False)

    async def mark_closed(self, escalation: Escalation, closed_by: str) -> None:
        channel, ts = _post_ref(escalation)
        headline, blocks = support_blocks(escalation, closed_by=closed_by)
        await _deliver(self.client.chat_update, channel=channel, ts=ts, text=f"{headline} (closed)", blocks=blocks)


__all__ = ["SlackSupportChannel"]
