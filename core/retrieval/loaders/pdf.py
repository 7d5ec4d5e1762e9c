"""PDF manuals → one document per page (pypdf), so every citation names its page.

pypdf reads the text layer; a scanned PDF has none, and is reported as such (run OCR on it
first) rather than indexed as empty. Encrypted PDFs are opened when they only restrict
editing (an empty user password), and reported otherwise. The extracted lines are reflowed:
a PDF breaks lines where the page ends them, not where sentences do, and a sentence cut in
two lines would be two half-facts to the chunker.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from core.retrieval.loaders import Document, UnusableFile

log = logging.getLogger(__name__)

PDF_SUFFIXES = (".pdf",)

_ITEM = re.compile(r"^\s*(?:[-*•●▪◦–]\s+|\d{1,3}[.)]\s+)")
_BULLET = re.compile(r"^\s*[•●▪◦–]\s+")
_END = (".", "!", "?", ":", "。", "！", "？")


def _reflow(text: str) -> str:
    """Page text with lines joined into paragraphs; list items stay one per line, bullets as ``- ``."""
    out: list[str] = []
    for raw in text.splitlines():
        line = " ".join(raw.split())
        if not line:
            if out and out[-1]:
                out.append("")
            continue
        if _ITEM.match(line):
            out.append(_BULLET.sub("- ", line))
        elif out and out[-1] and not out[-1].endswith(_END) and not _looks_like_heading(out[-1]):
            out[-1] = f"{out[-1][:-1]}{line}" if out[-1].endswith("-") and line[:1].islower() else f"{out[-1]} {line}"
        else:
            out.append(line)
    return "\n".join(out).strip()


def _looks_like_heading(line: str) -> bool:
    """A short line without end punctuation that starts a paragraph (a section title on the page)."""
    return len(line) <= 60 and not line.endswith((",", ";")) and line[:1].isupper() and len(line.split()) <= 8


def _open(path: Path):
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError, PyPdfError

    if path.stat().st_size == 0:
        raise UnusableFile("empty file")
    try:
        reader = PdfReader(path)
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError) as exc:
        raise UnusableFile(f"not a readable PDF ({exc}); export it again from the original") from None
    if reader.is_encrypted:
        try:
            opened = reader.decrypt("")
        except (PdfReadError, PyPdfError, NotImplementedError, ValueError) as exc:
            raise UnusableFile(f"encrypted PDF that cannot be opened ({exc}); save an unprotected copy") from None
        if not opened:
            raise UnusableFile("encrypted PDF (password protected); save an unprotected copy")
    return reader


def load_pdf(path: Path) -> list[Document]:
    """Each page with text → a document ``part`` ``p<N>``; the title says the page (p. N)."""
    from pypdf.errors import PdfReadError, PyPdfError

    reader = _open(path)
    try:
        pages = list(reader.pages)
        info = reader.metadata
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError) as exc:
        raise UnusableFile(f"damaged PDF ({exc}); export it again from the original") from None
    title = (info.title or "").strip() if info else ""
    texts: list[tuple[int, str]] = []
    for number, page in enumerate(pages, start=1):
        try:
            text = _reflow(page.extract_text() or "")
        except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("%s page %d: text not readable (%s); page skipped", path.name, number, exc)
            continue
        if text:
            texts.append((number, text))
    if not texts:
        raise UnusableFile(f"no text layer ({len(pages)} page(s) of images: a scanned PDF?); run OCR on it first")
    if not title:
        first = texts[0][1].split("\n", 1)[0]
        title = first if _looks_like_heading(first) else path.stem.replace("-", " ").replace("_", " ").strip().capitalize()
    return [Document(body=text, title=f"{title} (p. {number})", part=f"p{number}", extra={"page": str(number)})
            for number, text in texts]
