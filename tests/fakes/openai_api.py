"""A small OpenAI-compatible chat completions server for tests (aiohttp on 127.0.0.1).

It streams Server-Sent Events like vLLM, TGI or llama.cpp's server do, and can misbehave
on purpose: ``fail_first`` answers that many requests with HTTP 500 first, ``always_fail``
answers every request with 500, ``hang`` accepts the request and never answers,
``break_after`` drops the connection in the middle of the stream.

The reply text comes from ``reply(request_json) -> str``; by default it echoes the first
sentence of passage [1] of the user turn with a ``[1]`` citation, so a real Assistant's
verification accepts it.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Callable

from aiohttp import web


def grounded_reply(request: dict) -> str:
    """The first sentence of passage [1] in the last user message, cited."""
    user = [m["content"] for m in request["messages"] if m["role"] == "user"][-1]
    match = re.search(r"\[1\][^\n]*:\n(.+?)(?:\n\n|$)", user, re.S)
    body = match.group(1) if match else user
    sentence = re.split(r"(?<=[.!?])\s", " ".join(body.split()), maxsplit=1)[0]
    return f"{sentence.rstrip('.')} [1]."


class FakeOpenAI:
    def __init__(self, reply: Callable[[dict], str] = grounded_reply, model: str = "fake-model") -> None:
        self.reply = reply
        self.model = model
        self.fail_first = 0
        self.always_fail = False
        self.hang = False
        self.break_after: int | None = None  # drop the connection after this many words
        self.requests: list[dict] = []
        self.attempts = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": self.model, "object": "model"}]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.attempts += 1
        body = await request.json()
        if self.hang:
            await asyncio.sleep(3600)
        if self.always_fail or self.fail_first > 0:
            self.fail_first = max(0, self.fail_first - 1)
            return web.json_response({"error": {"message": "internal error", "type": "server_error"}}, status=500)
        self.requests.append(body)
        text = self.reply(body)
        words = re.findall(r"\S+\s*", text)[: body.get("max_tokens") or None]
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)

        async def send(delta: dict, finish: str | None = None) -> None:
            chunk = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": self.model,
                     "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        await response.write(b": keep-alive\n\n")
        await send({"role": "assistant", "content": ""})
        for n, word in enumerate(words):
            if self.break_after is not None and n == self.break_after:
                request.transport.close()  # type: ignore[union-attr]
                return response
            await send({"content": word})
            await asyncio.sleep(0.001)
        await send({}, finish="stop")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def start(self) -> FakeOpenAI:
        started = threading.Event()

        async def serve() -> None:
            app = web.Application()
            app.router.add_post("/v1/chat/completions", self._chat)
            app.router.add_get("/v1/models", self._models)
            self._runner = web.AppRunner(app, shutdown_timeout=0.1)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            started.set()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-openai", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("fake OpenAI server did not start")
        return self

    def stop(self) -> None:
        if self._loop is None:
            return

        async def shutdown() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(5)
