"""Checks of an Events API request body before Bolt sees it, so bad input is a 4xx, never a 500.

Order matters for safety: the size is bounded first (nothing larger is read), the signature
is checked on the raw bytes second (an unsigned request learns nothing else), and only a
signed body is decoded and its shape checked. Bolt itself assumes Slack's shapes (an object
body, string ids and text), so a signed but malformed body would otherwise fail inside it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

#: Top-level and event fields Bolt and the listeners read as strings.
_STRING_FIELDS = ("type", "event_id", "team_id", "api_app_id", "token", "challenge", "enterprise_id")
#: Fields of the events askdesk answers (mentions, messages) that its listeners read as strings;
#: other event types only need a string ``type`` (their ``user`` may be an object, e.g. team_join).
_ANSWERED_EVENTS = ("app_mention", "message")
_EVENT_STRING_FIELDS = ("text", "user", "channel", "ts", "thread_ts", "channel_type", "subtype", "bot_id",
                        "team", "user_team", "source_team", "event_ts")


class BadRequest(ValueError):
    """A request askdesk refuses with 400; the message says what is wrong with it."""


def timestamp_is_numeric(headers: Mapping[str, str]) -> bool:
    """``X-Slack-Request-Timestamp`` is absent or a whole number (the verifier's ``int()`` would raise)."""
    value = headers.get("X-Slack-Request-Timestamp")
    return value is None or value.strip().lstrip("-").isdigit()


def decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("body is not UTF-8") from None


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except RecursionError:
        raise BadRequest(f"{what} is nested too deeply") from None
    except ValueError:
        raise BadRequest(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise BadRequest(f"{what} is a JSON {type(value).__name__}, not an object")
    return value


def _strings(mapping: Mapping[str, Any], fields: tuple[str, ...], where: str) -> None:
    for name in fields:
        if name in mapping and mapping[name] is not None and not isinstance(mapping[name], str):
            raise BadRequest(f"{where}{name} must be a string")


def check_body(text: str, content_type: str) -> None:
    """Raise :class:`BadRequest` unless ``text`` has the shape of a Slack request Bolt can handle.

    The body is read as Bolt reads it (``slack_bolt.request.internals.parse_body``): as JSON when
    the type says so or it starts with ``{``, else as a form whose ``payload`` field (last one
    wins) holds JSON.
    """
    if not text:
        return
    if not (content_type.startswith("application/json") or text.startswith("{")):
        try:
            fields = dict(parse_qsl(text, keep_blank_values=True, errors="strict"))
        except (UnicodeDecodeError, ValueError):
            raise BadRequest("form body cannot be parsed") from None
        if "payload" in text and fields.get("payload") is not None:
            payload = _json_object(fields["payload"], "payload")
            _strings(payload, ("type", "trigger_id", "response_url"), "payload.")
            for key in ("user", "channel", "team", "message", "container", "enterprise"):
                if key in payload and payload[key] is not None and not isinstance(payload[key], dict):
                    raise BadRequest(f"payload.{key} must be an object")
            actions = payload.get("actions", [])
            if not isinstance(actions, list) or not all(isinstance(a, dict) for a in actions):
                raise BadRequest("payload.actions must be a list of objects")
        return
    body = _json_object(text, "body")
    _strings(body, _STRING_FIELDS, "")
    if "event" in body:
        event = body["event"]
        if not isinstance(event, dict):
            raise BadRequest("event must be an object")
        _strings(event, ("type",), "event.")
        if event.get("type") in _ANSWERED_EVENTS:
            _strings(event, _EVENT_STRING_FIELDS, "event.")
    if "authorizations" in body and not (
        isinstance(body["authorizations"], list) and all(isinstance(a, dict) for a in body["authorizations"])
    ):
        raise BadRequest("authorizations must be a list of objects")


__all__ = ["BadRequest", "check_body", "decode", "timestamp_is_numeric"]
