"""Slack event payloads → askdesk's common types; no I/O here, so it is tested without Slack.

Decides which events deserve an answer (not the bot's own, not other bots by default,
not edits/joins/deletes) and what the question and the thread's earlier turns are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bots.slack.render import PLACEHOLDER, to_plain
from core.language import PHRASES
from core.messages import HistoryTurn, IncomingMessage

PLATFORM = "slack"
_MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")
# The sources block the adapter appends is not part of what the assistant "said".
_SOURCES_HEADERS = tuple(f"\n\n*{table['sources']}*" for table in PHRASES.values())


@dataclass(frozen=True, slots=True)
class BotIdentity:
    """Who the bot is in this workspace (from ``auth.test``), to recognise its own messages."""

    user_id: str
    bot_id: str | None = None
    team_id: str | None = None


def question_text(text: str | None, identity: BotIdentity) -> str:
    """The question without the bot's @mention (other mentions become plain, links are unwrapped)."""
    text = (text or "").replace(f"<@{identity.user_id}>", " ")
    text = _MENTION.sub(" ", text)
    return to_plain(text)


def is_from_bot(message: Mapping[str, Any], identity: BotIdentity) -> bool:
    """True for messages written by this bot."""
    return message.get("user") == identity.user_id or (
        identity.bot_id is not None and message.get("bot_id") == identity.bot_id
    )


def skip_reason(event: Mapping[str, Any], identity: BotIdentity, ignore_bots: bool = True) -> str | None:
    """Why an event gets no answer (for the debug log), or None when it should be answered."""
    if is_from_bot(event, identity):
        return "own message"
    if event.get("subtype"):
        return f"subtype {event['subtype']}"  # edits, deletes, joins, bot_message, …
    if ignore_bots and (event.get("bot_id") or event.get("bot_profile")):
        return "another bot"
    if not event.get("channel") or not event.get("ts"):
        return "no channel or timestamp"
    return None


def reply_target(conversation_id: str, thread_id: str | None) -> tuple[str, str | None]:
    """Where to write to a stored conversation (an escalation's customer): channel and thread.

    ``/ask`` conversations have no thread the bot can write in (the command may be ephemeral,
    in a channel the bot is not in), so they are continued in the user's DM with the bot.
    """
    if thread_id and thread_id.startswith(ASK_THREAD_PREFIX):
        return thread_id.removeprefix(ASK_THREAD_PREFIX), None
    return conversation_id.rsplit(":", 1)[-1], thread_id or None


def reply_thread(event: Mapping[str, Any], *, direct: bool) -> str | None:
    """Where the answer goes: the question's thread in channels; in a DM, a thread only if asked in one."""
    if direct:
        return event.get("thread_ts")
    return event.get("thread_ts") or event.get("ts")


def thread_history(
    messages: Iterable[Mapping[str, Any]], current_ts: str, identity: BotIdentity, limit: int
) -> tuple[HistoryTurn, ...]:
    """Earlier turns of a thread: the bot's messages are the assistant's, everyone else's the user's.

    Only messages before the current one count; in-progress placeholders and the
    adapter's sources block are left out, so the model sees the conversation, not our chrome.
    """
    turns: list[HistoryTurn] = []
    for message in messages:
        ts = str(message.get("ts", ""))
        if not ts or _ts_key(ts) >= _ts_key(current_ts):
            continue
        if is_from_bot(message, identity):
            raw = str(message.get("text") or "")
            for header in _SOURCES_HEADERS:
                raw = raw.split(header, 1)[0]
            text = to_plain(raw)
            if text.rstrip(" " + PLACEHOLDER) == "":
                continue
            turns.append(HistoryTurn("assistant", text.removesuffix(" " + PLACEHOLDER)))
        elif message.get("subtype") in (None, "thread_broadcast", "bot_message"):
            text = question_text(message.get("text"), identity)
            if text:
                turns.append(HistoryTurn("user", text))
    return tuple(turns[-limit:]) if limit else ()


def _ts_key(ts: str) -> tuple[int, int]:
    seconds, _, fraction = ts.partition(".")
    return int(seconds or 0), int(fraction or 0)


def audience(event: Mapping[str, Any], body: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Who asks, for the knowledge-base scope (core.scopes): workspace, org, channel, asker's own team.

    The workspace is the installation's (``authorizations[0].team_id``): in a shared channel the
    envelope's ``team_id`` may be the channel owner's. Slack Connect marks another organisation's
    user with ``user_team`` (or ``source_team``) and a shared channel with ``is_ext_shared_channel``.
    """
    body = body or {}
    authorizations = body.get("authorizations") or [{}]
    first = authorizations[0] if isinstance(authorizations, list) and isinstance(authorizations[0], Mapping) else {}
    team = first.get("team_id") or body.get("team_id") or event.get("team")
    user_team = event.get("user_team") or event.get("source_team") or event.get("team")
    return {
        "team_id": _str_or_none(team),
        "enterprise_id": _str_or_none(first.get("enterprise_id") or body.get("enterprise_id")),
        "channel_id": _str_or_none(event.get("channel")),
        "user_team_id": _str_or_none(user_team),
        "shared_channel": bool(body.get("is_ext_shared_channel") or event.get("is_ext_shared_channel")),
    }


def _str_or_none(value: Any) -> str | None:
    return str(value) if value else None


def incoming_message(
    event: Mapping[str, Any],
    text: str,
    *,
    direct: bool,
    history: tuple[HistoryTurn, ...] = (),
    user_name: str | None = None,
    body: Mapping[str, Any] | None = None,
) -> IncomingMessage:
    """The common message for a Slack ``app_mention`` or DM ``message`` event.

    Pass the event's envelope as ``body`` so the scope sees the installation's workspace and
    whether the channel is shared (without it, the event's own ``team`` stands in).
    """
    return IncomingMessage(
        text=text,
        platform=PLATFORM,
        conversation_id=f"{event.get('team') or ''}:{event.get('channel')}".lstrip(":"),
        thread_id=event.get("thread_ts") or (None if direct else event.get("ts")),
        message_id=event.get("ts"),
        user_id=event.get("user"),
        user_name=user_name,
        is_direct=direct,
        mentioned_bot=not direct,
        history=history,
        **audience(event, body),
    )


#: ``/ask`` has no thread: each user's commands in a channel are their own conversation,
#: kept apart by this thread id (so one person's /ask is never context for another's).
ASK_THREAD_PREFIX = "ask:"


def command_message(command: Mapping[str, Any]) -> IncomingMessage:
    """The common message for a ``/ask`` slash command (one conversation per user and channel)."""
    user = command.get("user_id")
    return IncomingMessage(
        text=to_plain(command.get("text") or ""),
        platform=PLATFORM,
        conversation_id=f"{command.get('team_id') or ''}:{command.get('channel_id')}".lstrip(":"),
        thread_id=f"{ASK_THREAD_PREFIX}{user}" if user else None,
        user_id=user,
        user_name=command.get("user_name"),
        is_direct=command.get("channel_name") == "directmessage",
        mentioned_bot=True,
        team_id=_str_or_none(command.get("team_id")),
        enterprise_id=_str_or_none(command.get("enterprise_id")),
        channel_id=_str_or_none(command.get("channel_id")),
        user_team_id=_str_or_none(command.get("user_team_id") or command.get("team_id")),
        shared_channel=bool(command.get("is_ext_shared_channel")),
    )
