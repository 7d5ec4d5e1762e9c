"""File-format readers: each turns one file into :class:`Document` s of Markdown for the chunker.

Every format ends in the same Markdown the hand-written articles use (ATX headings, pipe
tables, ``![alt](src)`` images), so headings become passage titles, tables become
``Column: value; Column: value.`` rows and images become passage metadata in exactly one
place (:mod:`core.retrieval.markdown` and :mod:`core.retrieval.loader`), whatever the source.

A reader raises :class:`UnusableFile` with a reason written for the person who owns the file
("encrypted PDF; …", "no text layer …"): the build reports it and goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class UnusableFile(ValueError):
    """A file that cannot give any passage; the message says why and what to do."""


@dataclass(slots=True)
class Document:
    """One article (or one page of one) read from a file, as Markdown."""

    body: str
    title: str | None = None  # None: the loader takes the first ``# `` heading, else the file name
    url: str | None = None  # the public page: citation link, and base for relative image sources
    article: str | None = None  # several articles in one file (a JSON export): this one's id
    part: str | None = None  # one article cut into parts (PDF pages): this part's id
    extra: dict[str, str] = field(default_factory=dict)
