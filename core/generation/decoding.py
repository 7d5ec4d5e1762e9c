"""Choosing each next token and turning token ids back into text, for the batch scheduler.

Decoding is greedy. Banned token sequences (``bad_words_ids``) are honoured the way
``generate`` does: a banned single token is never chosen, and the last token of a banned
sequence is masked when the tokens before it were just generated. Detokenisation runs in each
consumer's own thread (:class:`IncrementalDecoder`), so only token ids cross threads.
"""

from __future__ import annotations

from collections.abc import Sequence


class TokenChooser:
    """Greedy choice per batch row, with banned tokens and (until a row's minimum) end-of-sequence masked."""

    def __init__(self, eos_token_ids: Sequence[int], bad_words_ids: Sequence[Sequence[int]] | None, device: str) -> None:
        import torch

        self.eos = set(int(e) for e in eos_token_ids)
        bad = [list(map(int, seq)) for seq in (bad_words_ids or []) if seq]
        self._banned_single = sorted({seq[0] for seq in bad if len(seq) == 1})
        self._banned_multi = [(tuple(seq[:-1]), seq[-1]) for seq in bad if len(seq) > 1]
        self._banned_single_t = torch.tensor(self._banned_single, dtype=torch.long, device=device)
        self._eos_t = torch.tensor(sorted(self.eos), dtype=torch.long, device=device)

    def choose(self, logits, histories: Sequence[Sequence[int]], eos_allowed: Sequence[bool]) -> list[int]:
        """The next token of each row. ``histories``: each row's prompt and generated tokens so far;
        ``eos_allowed``: False while a row has fewer tokens than its minimum."""
        import torch

        logits = logits.float()
        if self._banned_single:
            logits.index_fill_(1, self._banned_single_t, float("-inf"))
        for row, (history, eos_ok) in enumerate(zip(histories, eos_allowed)):
            if not eos_ok and len(self._eos_t):
                logits[row].index_fill_(0, self._eos_t, float("-inf"))
            for prefix, last in self._banned_multi:
                if len(history) >= len(prefix) and tuple(history[-len(prefix):]) == prefix:
                    logits[row, last] = float("-inf")
        return torch.argmax(logits, dim=-1).tolist()


class IncrementalDecoder:
    """Turns token ids into text deltas whose concatenation is ``decode(all ids)``.

    A delta is held back while the text ends in an incomplete UTF-8 sequence.
    """

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.emitted = ""

    def _text(self) -> str:
        return self.tokenizer.decode(self.ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def push(self, token_id: int) -> str:
        self.ids.append(token_id)
        text = self._text()
        if text.endswith("\ufffd") or not text.startswith(self.emitted):
            return ""
        delta, self.emitted = text[len(self.emitted):], text
        return delta

    def flush(self) -> str:
        """What is left at the end; a character cut off by the token limit is dropped, not shown as �."""
        text = self._text().rstrip("\ufffd")
        if text.startswith(self.emitted) and len(text) > len(self.emitted):
            delta, self.emitted = text[len(self.emitted):], text
            return delta
        return ""
