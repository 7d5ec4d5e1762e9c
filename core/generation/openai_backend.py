"""Generation by any OpenAI-compatible server: vLLM, TGI, llama.cpp ``llama-server``, …

``POST {base_url}/chat/completions`` with ``stream: true``; the reply is Server-Sent Events,
``data: {json chunk}`` lines ending with ``data: [DONE]``. Decoding is greedy
(``temperature: 0``) like the local backend.

Failures are retried with tenacity only *before the first token* — a connection refused,
a timeout, a 5xx or 429 — because after the first text has gone to the user a retry
would repeat it. What is still failing after the last attempt, and any failure after the
first token, becomes a :class:`~core.errors.GenerationError` that says what to check.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from core.errors import GenerationError
from core.generation.base import ChatMessage

log = logging.getLogger(__name__)


class _Retryable(Exception):
    """A failure worth another attempt (server error, overload)."""


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, (_Retryable, httpx.TransportError))


class OpenAIGenerator:
    """Streams chat completions from an OpenAI-compatible ``/v1/chat/completions`` endpoint."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        attempts: int = 3,
        backoff: float = 0.5,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = f"openai:{model}"
        self.attempts = attempts
        self.backoff = backoff
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        headers = {"Accept": "text/event-stream"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(connect=connect_timeout, read=read_timeout, write=read_timeout, pool=read_timeout),
        )

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def warm_up(self) -> None:
        """Check that the server answers (``GET /models``); a warning, not an error, if it does not yet."""
        try:
            response = self._client.get(f"{self.base_url}/models", timeout=self.connect_timeout)
            response.raise_for_status()
            served = [m.get("id") for m in response.json().get("data", [])]
            if served and self.model not in served:
                log.warning("OpenAI-compatible server at %s serves %s, not %r (ASKDESK_OPENAI_MODEL)",
                            self.base_url, served, self.model)
            else:
                log.info("OpenAI-compatible server at %s is ready", self.base_url)
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("OpenAI-compatible server at %s is not answering yet: %s", self.base_url, exc)

    def close(self) -> None:
        self._client.close()

    # ---- streaming -----------------------------------------------------------------------
    def _open(self, payload: dict) -> tuple[httpx.Response, Iterator[str], str | None]:
        """One attempt: connect, check the status, read up to the first text delta."""
        request = self._client.build_request("POST", self.url, json=payload)
        response = self._client.send(request, stream=True)
        try:
            if response.status_code >= 500 or response.status_code == 429:
                body = response.read().decode("utf-8", "replace")[:300]
                raise _Retryable(f"HTTP {response.status_code}: {body}")
            if response.status_code >= 400:
                body = response.read().decode("utf-8", "replace")[:300]
                raise GenerationError(
                    f"The OpenAI-compatible server at {self.base_url} refused the request (HTTP "
                    f"{response.status_code}: {body}). Check ASKDESK_OPENAI_MODEL and ASKDESK_OPENAI_API_KEY."
                )
            deltas = self._deltas(response)
            first = next(deltas, None)
            return response, deltas, first
        except BaseException:
            response.close()
            raise

    def _deltas(self, response: httpx.Response) -> Iterator[str]:
        for line in response.iter_lines():
            line = line.strip()
            if not line.startswith("data:"):
                continue  # blank separators, comments (": keep-alive"), "event:" lines
            data = line[5:].strip()
            if data == "[DONE]":
                return
            try:
                chunk = json.loads(data)
            except ValueError as exc:
                raise GenerationError(f"The OpenAI-compatible server at {self.base_url} sent a malformed "
                                      f"stream chunk: {data[:200]!r}") from exc
            if "error" in chunk:
                raise _Retryable(f"server error in stream: {chunk['error']}")
            for choice in chunk.get("choices") or ():
                content = (choice.get("delta") or {}).get("content")
                if content:
                    yield content

    def stream(self, messages: list[ChatMessage], max_new_tokens: int) -> Iterator[str]:
        payload = {
            "model": self.model,
            "messages": list(messages),
            "max_tokens": max_new_tokens,
            "temperature": 0,
            "stream": True,
        }
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff, max=8),
            retry=retry_if_exception(_retryable),
            reraise=True,
            before_sleep=lambda state: log.warning(
                "OpenAI-compatible server attempt %d failed (%s); retrying", state.attempt_number,
                state.outcome.exception() if state.outcome else "?"),
        )
        try:
            response, deltas, first = retrying(self._open, payload)
        except GenerationError:
            raise
        except httpx.TimeoutException as exc:
            raise GenerationError(
                f"The OpenAI-compatible server at {self.base_url} did not answer in time ({type(exc).__name__}, "
                f"{self.attempts} attempts; connect {self.connect_timeout:g}s, read {self.read_timeout:g}s). "
                "Check that it is running and not overloaded, or raise ASKDESK_OPENAI_READ_TIMEOUT."
            ) from exc
        except httpx.TransportError as exc:
            raise GenerationError(
                f"Could not reach the OpenAI-compatible server at {self.base_url} ({type(exc).__name__}: {exc}) "
                f"after {self.attempts} attempts. Check ASKDESK_OPENAI_BASE_URL and that the server is running."
            ) from exc
        except _Retryable as exc:
            raise GenerationError(
                f"The OpenAI-compatible server at {self.base_url} kept failing ({exc}) after {self.attempts} "
                "attempts. Check the server's logs."
            ) from exc

        # After the first token nothing is retried: the user has already seen text.
        try:
            if first is not None:
                yield first
            yield from deltas
        except (httpx.HTTPError, _Retryable) as exc:
            raise GenerationError(
                f"The OpenAI-compatible server at {self.base_url} failed in the middle of an answer "
                f"({type(exc).__name__}: {exc}). Ask again; check the server's logs if it keeps happening."
            ) from exc
        finally:
            response.close()
