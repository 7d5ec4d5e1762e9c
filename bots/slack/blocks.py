"""Block Kit layouts: answers with their pictures, 👍/👎 and "Talk to a person", related articles, support-channel posts.

Pure functions (no I/O), so they are tested without Slack. Every label a customer sees
comes from :func:`core.language.phrase` in the answer's language; the support channel is
written for the team in English.

A button must find its conversation again when it is clicked (possibly after a restart),
so its ``value`` carries a :class:`ConversationRef` as compact JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bots.images import answer_images
from bots.slack.events import ASK_THREAD_PREFIX, reply_target
from bots.slack.render import escape, link, split_mrkdwn
from core.language import phrase
from core.messages import Answer
from core.store import Escalation
from core.support import clip_transcript
from core.support.transcript import TRANSCRIPT_LIMIT

ACTION_UP = "askdesk_feedback_up"
ACTION_DOWN = "askdesk_feedback_down"
ACTION_PERSON = "askdesk_talk_to_person"
ACTION_CLOSE = "askdesk_close_escalation"
FEEDBACK_BLOCK = "askdesk_feedback"
#: Slack's limit for the text of one section block.
SECTION_LIMIT = 3000


@dataclass(frozen=True, slots=True)
class ConversationRef:
    """A customer's conversation as the core stores it, and which answer a button belongs to."""

    conversation_id: str  # as in IncomingMessage: ``team:channel``
    thread_id: str | None = None  # a thread ts, ``ask:USER`` for /ask, None for a DM's top level
    turn_id: int | None = None
    language: str = "en"
    scope: str | None = None  # the knowledge-base scope that answered: an escalation is learned there

    @property
    def channel(self) -> str:
        """Where to write to the customer (a channel id, or a user id: Slack opens the DM)."""
        return reply_target(self.conversation_id, self.thread_id)[0]

    @property
    def thread_ts(self) -> str | None:
        return reply_target(self.conversation_id, self.thread_id)[1]

    def to_value(self) -> str:
        data: dict[str, Any] = {"c": self.conversation_id, "th": self.thread_id or "", "t": self.turn_id, "l": self.language}
        if self.scope:
            data["s"] = self.scope
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_value(cls, value: str | None) -> ConversationRef | None:
        """The ref a button carried, or None for a value this version did not write."""
        try:
            data = json.loads(value or "")
            turn = data.get("t")
            return cls(
                conversation_id=str(data["c"]), thread_id=str(data.get("th") or "") or None,
                turn_id=int(turn) if turn is not None else None, language=str(data.get("l") or "en"),
                scope=str(data.get("s") or "") or None,
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


def sections(mrkdwn: str) -> list[dict[str, Any]]:
    """mrkdwn as section blocks of at most Slack's 3,000 characters each."""
    return [{"type": "section", "text": {"type": "mrkdwn", "text": piece}} for piece in split_mrkdwn(mrkdwn, SECTION_LIMIT) if piece]


def _button(action_id: str, label: str, value: str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {"type": "button", "action_id": action_id, "value": value,
                              "text": {"type": "plain_text", "text": label, "emoji": True}}
    if style:
        button["style"] = style
    return button


def person_button(ref: ConversationRef) -> dict[str, Any]:
    return _button(ACTION_PERSON, phrase("talk_to_person", ref.language), ref.to_value())


def related_block(answer: Answer) -> dict[str, Any] | None:
    """Related articles as links under their label; None when there are none."""
    if not answer.related:
        return None
    lines = [f"*{escape(phrase('related', answer.language))}*"]
    lines += [f"• {link(c.url, c.label)}" if c.url else f"• {escape(c.label)}" for c in answer.related]
    return {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}


def image_blocks(answer: Answer) -> list[dict[str, Any]]:
    """One image block per picture of the cited passages (:func:`bots.images.answer_images`)."""
    return [{"type": "image", "image_url": image.url, "alt_text": image.alt} for image in answer_images(answer)]


def has_images(blocks: Iterable[Mapping[str, Any]]) -> bool:
    return any(block.get("type") == "image" for block in blocks)


def without_images(blocks: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``blocks`` less their image blocks: what to send when Slack cannot fetch a picture."""
    return [dict(block) for block in blocks if block.get("type") != "image"]


def feedback_block(ref: ConversationRef, offer_person: bool = False) -> dict[str, Any]:
    """👍 / 👎 (and "Talk to a person" after a refusal); each button's value carries the ref."""
    value = ref.to_value()
    elements = [_button(ACTION_UP, "👍", value), _button(ACTION_DOWN, "👎", value)]
    if offer_person:
        elements.append(person_button(ref))
    return {"type": "actions", "block_id": FEEDBACK_BLOCK, "elements": elements}


def answer_footer(answer: Answer, ref: ConversationRef) -> list[dict[str, Any]]:
    """What follows an answer's text: the cited passages' pictures, related articles, then the
    buttons (when the turn was stored)."""
    blocks: list[dict[str, Any]] = image_blocks(answer)
    related = related_block(answer)
    if related:
        blocks.append(related)
    if ref.turn_id is not None:
        blocks.append(feedback_block(ref, offer_person=answer.offers_person))
    elif answer.offers_person:
        blocks.append({"type": "actions", "block_id": FEEDBACK_BLOCK, "elements": [person_button(ref)]})
    return blocks


def answer_blocks(text: str, footer: Iterable[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    return sections(text) + list(footer)


def feedback_ack(ref: ConversationRef, positive: bool) -> tuple[str, list[dict[str, Any]]]:
    """The ephemeral reply to a click: thanks, or (after 👎) an apology with "Talk to a person"."""
    if positive:
        text = phrase("feedback_thanks", ref.language)
        return text, [{"type": "context", "elements": [{"type": "mrkdwn", "text": escape(text)}]}]
    text = phrase("feedback_sorry", ref.language)
    return text, [
        {"type": "section", "text": {"type": "mrkdwn", "text": escape(text)}},
        {"type": "actions", "block_id": FEEDBACK_BLOCK, "elements": [person_button(ref)]},
    ]


def customer_place(escalation: Escalation) -> str:
    """Where the customer is, as mrkdwn for the support team."""
    channel = escalation.conversation_id.rsplit(":", 1)[-1]
    if (escalation.thread_id or "").startswith(ASK_THREAD_PREFIX):
        return f"`/ask` in <#{channel}> (replies go to their DM with askdesk)"
    if channel.startswith("D"):
        return "a direct message"
    return f"<#{channel}>"


def transcript_mrkdwn(transcript: str) -> str:
    """The escalation's transcript, escaped, cut by the core's one rule (whole lines, oldest dropped)
    and, should escaping make it longer than a section takes, cut again by the same rule."""
    budget = SECTION_LIMIT - 40  # "*Transcript*" and the code fence
    limit = TRANSCRIPT_LIMIT
    shown = escape(clip_transcript(transcript, limit=limit))
    while len(shown) > budget:
        limit //= 2
        shown = escape(clip_transcript(transcript, limit=limit))
    return shown


def support_blocks(escalation: Escalation, closed_by: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    """The post in the support channel: who asked what, where, the transcript, and a Close button."""
    who = f"<@{escalation.user_id}>" if escalation.user_id else escape(escalation.user_name or "a customer")
    headline = f"Escalation #{escalation.id}: {who} asked for a person in {customer_place(escalation)}"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{headline}*"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Question*\n>" + escape(escalation.question).replace("\n", "\n>")[:SECTION_LIMIT - 20]}},
    ]
    transcript = transcript_mrkdwn(escalation.transcript)
    if transcript:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*Transcript*\n```\n{transcript}\n```"}})
    if closed_by is None:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text":
                       "Reply in this thread: every reply is relayed to the customer. Close it when you are done "
                       f"(button, or `/askdesk close {escalation.id}`)."}]})
        blocks.append({"type": "actions", "block_id": f"askdesk_escalation_{escalation.id}",
                       "elements": [_button(ACTION_CLOSE, "Close", str(escalation.id), style="danger")]})
    else:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f":white_check_mark: Closed by <@{closed_by}>"}]})
    return headline, blocks


def block_texts(blocks: Iterable[Mapping[str, Any]]) -> list[str]:
    """The mrkdwn/plain texts inside blocks (sections, contexts, buttons) — for tests and logs."""
    texts: list[str] = []
    for block in blocks:
        if isinstance(block.get("text"), Mapping):
            texts.append(str(block["text"].get("text", "")))
        for element in block.get("elements") or ():
            if isinstance(element.get("text"), Mapping):
                texts.append(str(element["text"].get("text", "")))
            elif isinstance(element.get("text"), str):
                texts.append(element["text"])
    return texts


__all__ = [
    "ACTION_CLOSE", "ACTION_DOWN", "ACTION_PERSON", "ACTION_UP", "FEEDBACK_BLOCK", "ConversationRef",
    "answer_blocks", "answer_footer", "block_texts", "feedback_ack", "feedback_block", "has_images", "image_blocks",
    "related_block", "sections", "support_blocks", "transcript_mrkdwn", "without_images",
]
