"""Getting an answer into a Telegram chat: typing action, streamed edits, split final text.

The rules this module keeps, so handlers do not have to:
- the user always gets the answer: if Telegram rejects our HTML ("can't parse entities"),
  the same piece is sent again as plain text;
- a failed *preview* edit never loses the answer: the final text is still sent;
- flood control (``RetryAfter``) is waited out by the bot's ``AIORateLimiter``, not here;
- a user never sees text that is later taken back: previews have no cursor and show only the
  part of the answer whose final rendering is certain (see :func:`bots.telegram.render.render_partial`);
- the pictures of the cited passages follow the answer (:func:`send_images`); a chat that does not
  allow photos, or a picture Telegram cannot fetch, costs the picture, never the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from telegram import Bot, InlineKeyboardMarkup, InputMediaPhoto, LinkPreviewOptions, Message, ReplyParameters
from telegram.constants import ChatAction, ParseMode
from telegram.error import BadRequest, Forbidden, TelegramError

from bots.images import AnswerImage
from bots.streaming import relay_stream
from bots.telegram.render import Chunk, escape, render_answer, render_partial, visible_text
from core.messages import Answer

log = logging.getLogger(__name__)

#: Telegram shows "typing…" for about 5 s; repeat a little sooner.
TYPING_INTERVAL = 4.0
_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


def is_parse_error(exc: BadRequest) -> bool:
    """Telegram's answer to HTML it cannot read ("can't parse entities: …")."""
    text = exc.message.lower()
    return "can't parse entities" in text or "can't find end" in text or "unsupported start tag" in text


def is_not_modified(exc: BadRequest) -> bool:
    """An edit to the text already shown; harmless."""
    return "message is not modified" in exc.message.lower()


async def send_chunk(bot: Bot, chat_id: int, chunk: Chunk, reply_to: int | None = None,
                     thread_id: int | None = None, markup: InlineKeyboardMarkup | None = None) -> Message:
    """Send one piece as HTML; resend it as plain text if Telegram cannot parse the HTML.

    ``thread_id`` keeps the message in a forum topic even when it is not a reply;
    ``markup`` puts inline buttons (feedback, hand-off) under it."""
    reply = ReplyParameters(message_id=reply_to, allow_sending_without_reply=True) if reply_to else None
    where = {"reply_parameters": reply, "message_thread_id": thread_id, "link_preview_options": _NO_PREVIEW,
             "reply_markup": markup}
    try:
        return await bot.send_message(chat_id, chunk.html, parse_mode=ParseMode.HTML, **where)
    except BadRequest as exc:
        if not is_parse_error(exc):
            raise
        log.warning("telegram rejected HTML in chat %s (%s); resending as plain text", chat_id, exc.message)
        return await bot.send_message(chat_id, chunk.plain, **where)


async def edit_chunk(bot: Bot, message: Message, chunk: Chunk, markup: InlineKeyboardMarkup | None = None) -> None:
    """Replace ``message``'s text with ``chunk`` (HTML, else plain text), and its buttons with ``markup``."""
    chat_id, message_id = message.chat_id, message.message_id
    try:
        await bot.edit_message_text(
            chunk.html, chat_id=chat_id, message_id=message_id, parse_mode=ParseMode.HTML,
            link_preview_options=_NO_PREVIEW, reply_markup=markup,
        )
        return
    except BadRequest as exc:
        if is_not_modified(exc):
            return
        if not is_parse_error(exc):
            raise
        log.warning("telegram rejected HTML in chat %s (%s); editing as plain text", chat_id, exc.message)
    try:
        await bot.edit_message_text(chunk.plain, chat_id=chat_id, message_id=message_id,
                                    link_preview_options=_NO_PREVIEW, reply_markup=markup)
    except BadRequest as exc:
        if not is_not_modified(exc):
            raise


def _no_rights(exc: TelegramError) -> bool:
    """The chat does not let the bot send photos (group permissions, a channel, a blocked bot)."""
    text = str(exc).lower()
    return isinstance(exc, Forbidden) or "not enough rights" in text or "photos_forbidden" in text


async def send_images(bot: Bot, chat_id: int, images: list[AnswerImage], thread_id: int | None = None) -> list[Message]:
    """The answer's pictures after it: one photo (``sendPhoto`` with its URL), or one album of several.

    Telegram fetches each URL itself. When it cannot fetch one, the album fails as a whole, so
    the pictures are tried one by one; when the chat does not allow photos, nothing more is
    tried. Never raises: a picture is never worth an apology in place of an answer."""
    if not images:
        return []
    try:
        if len(images) == 1:
            image = images[0]
            return [await bot.send_photo(chat_id, image.url, caption=image.alt, message_thread_id=thread_id)]
        album = [InputMediaPhoto(image.url, caption=image.alt) for image in images]
        return list(await bot.send_media_group(chat_id, album, message_thread_id=thread_id))
    except TelegramError as exc:
        if len(images) == 1 or _no_rights(exc):
            log.info("pictures not sent to chat %s: %s", chat_id, exc)
            return []
        log.info("album not sent to chat %s (%s); trying its pictures one by one", chat_id, exc)
    except Exception:  # noqa: BLE001 - never fail an answer over its pictures
        log.warning("pictures not sent to chat %s", chat_id, exc_info=True)
        return []
    sent: list[Message] = []
    for image in images:
        try:
            sent.append(await bot.send_photo(chat_id, image.url, caption=image.alt, message_thread_id=thread_id))
        except TelegramError as exc:
            log.info("picture not sent to chat %s: %s", chat_id, exc)
            if _no_rights(exc):
                break
        except Exception:  # noqa: BLE001
            log.warning("picture not sent to chat %s", chat_id, exc_info=True)
    return sent


@contextlib.asynccontextmanager
async def typing(bot: Bot, chat_id: int, interval: float = TYPING_INTERVAL,
                 thread_id: int | None = None) -> AsyncIterator[None]:
    """Show "typing…" in the chat, repeated every ``interval`` s, until the block exits."""

    async def keep_typing() -> None:
        while True:
            try:
                await bot.send_chat_action(chat_id, ChatAction.TYPING, message_thread_id=thread_id)
            except TelegramError as exc:  # cosmetic: never fail an answer over it
                log.debug("chat action failed in chat %s: %s", chat_id, exc)
            await asyncio.sleep(interval)

    task = asyncio.create_task(keep_typing(), name=f"telegram-typing-{chat_id}")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class StreamedReply:
    """One answer in one chat: a preview message edited as text arrives, then the final text."""

    def __init__(self, bot: Bot, chat_id: int, reply_to: int | None = None, interval: float = 1.0,
                 thread_id: int | None = None) -> None:
        self.bot = bot
        self.chat_id = chat_id
        self.reply_to = reply_to
        self.thread_id = thread_id
        self.interval = interval
        self.preview: Message | None = None
        self.shown: Chunk | None = None  # the last preview put in the chat
        # Told about the reply's first message (the inbox remembers it, so a second try edits it).
        self.on_first_sent: Callable[[Message], Awaitable[None]] | None = None
        self._sent_any = False

    async def _send(self, chunk: Chunk, reply_to: int | None = None,
                    markup: InlineKeyboardMarkup | None = None) -> Message:
        message = await send_chunk(self.bot, self.chat_id, chunk, reply_to, self.thread_id, markup)
        if not self._sent_any:
            self._sent_any = True
            if self.on_first_sent is not None:
                await self.on_first_sent(message)
        return message

    def continue_in(self, message: Message) -> None:
        """Write into a message an earlier try already sent (a resumed question), not a new one."""
        self.preview = message
        self._sent_any = True

    async def show(self, text: str) -> None:
        """Send or edit the preview; a failure here is logged, the final text still goes out.

        The preview carries no cursor: it is always the start of the final message's text
        (:func:`~bots.telegram.render.render_partial`), so nothing shown is ever taken back.
        Nothing is sent while no part of the text is certain, nor when it did not change."""
        chunk = render_partial(text)
        if not chunk.plain.strip() or chunk == self.shown:
            return
        self.shown = chunk
        try:
            if self.preview is None:
                self.preview = await self._send(chunk, self.reply_to)
            else:
                await edit_chunk(self.bot, self.preview, chunk)
        except TelegramError as exc:
            log.warning("could not update the preview in chat %s: %s", self.chat_id, exc)

    async def stream(self, events: AsyncIterator[str | Answer]) -> Answer:
        """Show ``events`` (the core's deltas) as a preview; return the final Answer, not yet shown."""
        return await relay_stream(events, self.show, interval=self.interval)

    async def relay(self, events: AsyncIterator[str | Answer], language: str,
                    markup: InlineKeyboardMarkup | None = None) -> Answer:
        """Stream ``events`` (the core's deltas, then its Answer) into the chat; return the Answer."""
        answer = await self.stream(events)
        await self.finish(render_answer(answer, language), markup)
        return answer

    async def finish(self, chunks: list[Chunk], markup: InlineKeyboardMarkup | None = None) -> list[Message]:
        """Put the final pieces in the chat: the first replaces the preview, the rest follow.

        ``markup`` (buttons) goes under the last piece, so it sits below the sources."""
        sent: list[Message] = []
        first, rest = chunks[0], chunks[1:]
        if self.shown is not None and not visible_text(first.html).startswith(visible_text(self.shown.html)):
            # Never expected (previews are prefixes of the final text); the log says if it happens.
            log.warning("the final answer in chat %s does not continue its preview", self.chat_id)
        first_markup = None if rest else markup
        if self.preview is not None:
            try:
                await edit_chunk(self.bot, self.preview, first, first_markup)
                sent.append(self.preview)
            except BadRequest as exc:  # e.g. the preview was deleted meanwhile
                log.warning("could not edit the preview in chat %s (%s); sending anew", self.chat_id, exc.message)
                sent.append(await self._send(first, self.reply_to, first_markup))
        else:
            sent.append(await self._send(first, self.reply_to, first_markup))
        for n, chunk in enumerate(rest, start=1):
            sent.append(await self._send(chunk, markup=markup if n == len(rest) else None))
        return sent

    async def fail(self, text: str) -> None:
        """Say something short instead of the answer (apology, invalid question); never raises."""
        chunk = Chunk(escape(text), text)
        try:
            if self.preview is not None:
                await edit_chunk(self.bot, self.preview, chunk)
            else:
                await self._send(chunk, self.reply_to)
        except Exception:  # noqa: BLE001 - the chat may be gone; the log has the first error
            log.exception("could not tell chat %s that answering failed", self.chat_id)
