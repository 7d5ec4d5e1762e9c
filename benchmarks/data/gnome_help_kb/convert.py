"""Convert GNOME Help Mallard pages (gnome-user-docs) into askdesk Markdown articles.

Kept with the converted data so the conversion can be repeated; it is not used at run time:

    apt-get download gnome-user-docs && dpkg-deb -x gnome-user-docs_*.deb pkg
    python convert.py pkg/usr/share/help/C/gnome-help articles PAGE_ID ...

What it does to each page: keeps the title, the text of paragraphs, lists, steps, term lists,
tables, notes and sections (as Markdown headings, lists and pipe tables); writes key
combinations as ``Ctrl+Alt+T``, menu paths as ``Settings > Privacy``; a link without text
becomes the linked page's title; drops images, the page's links/credits block and text that
GNOME shows only on other platforms (``if:`` tests on ``platform:``, e.g. GNOME Classic).
"""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

M = "{http://projectmallard.org/1.0/}"
IF = "{http://projectmallard.org/if/1.0/}"
UI = "{http://projectmallard.org/ui/1.0/}"
URL = "https://help.gnome.org/users/gnome-help/stable/{}.html.en"
BLOCKS = {"p", "list", "steps", "terms", "table", "note", "section", "screen", "code", "example",
          "quote", "figure", "media", "comment", "title", "desc", "links", "synopsis", "listing", "tree"}


def local(tag: str) -> str:
    return tag.split("}", 1)[-1]


def passes(test: str | None) -> bool:
    """Keep text meant for the plain GNOME desktop; drop other platforms' variants."""
    if not test:
        return True
    for term in re.split(r"[ ,]+", test.strip()):
        if term.startswith("platform:") or term.startswith("action:") or term.startswith("target:"):
            return False
    return True


def chosen(el: ET.Element) -> list[ET.Element]:
    """Children of ``el`` with ``if:`` conditionals resolved."""
    out: list[ET.Element] = []
    for child in el:
        if child.tag == IF + "if":
            if passes(child.get("test")):
                out.extend(chosen(child))
        elif child.tag == IF + "choose":
            for branch in child:
                if branch.tag == IF + "when" and passes(branch.get("test")):
                    out.extend(chosen(branch))
                    break
                if branch.tag == IF + "else":
                    out.extend(chosen(branch))
                    break
        else:
            out.append(child)
    return out


class Converter:
    def __init__(self, titles: dict[str, str]):
        self.titles = titles

    # ---- inline ---------------------------------------------------------------------
    def inline(self, el: ET.Element) -> str:
        tag = local(el.tag)
        if tag in {"media", "comment"}:
            return ""
        if tag == "keyseq":
            keys = [self.inline(k).strip() for k in chosen(el) if local(k.tag) in {"key", "gui", "keysym"}]
            return "+".join(k for k in keys if k)
        if tag == "guiseq":
            parts = [self.inline(k).strip() for k in chosen(el) if local(k.tag) == "gui"]
            return " > ".join(p for p in parts if p)
        text = el.text or ""
        for child in chosen(el):
            text += self.inline(child) + (child.tail or "")
        if tag == "link" and not text.strip():
            target = (el.get("xref") or "").split("#")[0]
            text = self.titles.get(target, el.get("href") or target)
        return text

    def para(self, el: ET.Element) -> str:
        return re.sub(r"\s+", " ", self.inline(el)).strip()

    # ---- blocks ---------------------------------------------------------------------
    def blocks(self, el: ET.Element, depth: int, indent: str = "") -> list[str]:
        out: list[str] = []
        for child in chosen(el):
            out.extend(self.block(child, depth, indent))
        return out

    def item_text(self, item: ET.Element, depth: int, indent: str, marker: str) -> list[str]:
        lines: list[str] = []
        first = True
        for child in chosen(item):
            tag = local(child.tag)
            if tag == "p" and first:
                lines.append(f"{indent}{marker} {self.para(child)}")
                first = False
            elif tag == "title":
                continue
            else:
                sub = self.block(child, depth, indent + "   ")
                if first and sub:
                    lines.append(f"{indent}{marker} {sub[0].strip()}")
                    sub = sub[1:]
                    first = False
                lines.extend(s for s in sub if s)
        return lines

    def block(self, el: ET.Element, depth: int, indent: str = "") -> list[str]:
        tag = local(el.tag)
        if el.tag == UI + "expander" or tag == "section":
            title = el.find(M + "title")
            head = [f"{'#' * min(depth, 6)} {self.para(title)}", ""] if title is not None else []
            return head + self.blocks(el, depth + 1)
        if tag in {"title", "info", "media", "comment", "links", "desc"}:
            return []
        if tag == "p":
            text = self.para(el)
            return [f"{indent}{text}", ""] if text else []
        if tag in {"note", "example", "quote", "figure"}:
            return self.blocks(el, depth, indent)
        if tag in {"screen", "code", "synopsis", "listing"}:
            text = "".join(el.itertext()).strip("\n")
            return [f"{indent}```", *[indent + line for line in text.splitlines()], f"{indent}```", ""]
        if tag in {"list", "steps", "tree"}:
            title = el.find(M + "title")
            lines = [f"{indent}{self.para(title).rstrip(':')}:", ""] if title is not None else []
            n = 0
            for item in chosen(el):
                if local(item.tag) != "item":
                    continue
                n += 1
                marker = f"{n}." if tag == "steps" else "-"
                lines.extend(self.item_text(item, depth, indent, marker))
            return lines + [""]
        if tag == "terms":
            lines = []
            for item in chosen(el):
                if local(item.tag) != "item":
                    continue
                terms = [self.para(t) for t in item.findall(M + "title")]
                body = [self.para(p) for p in chosen(item) if local(p.tag) == "p"]
                lines.append(f"{indent}- **{' / '.join(terms)}**: {' '.join(body)}".rstrip())
                for sub in chosen(item):
                    if local(sub.tag) in {"list", "steps", "note", "terms"}:
                        lines.extend(self.block(sub, depth, indent + "   "))
            return lines + [""]
        if tag == "table":
            rows = []
            title = el.find(M + "title")
            head = el.find(M + "thead")
            for tr in el.iter(M + "tr"):
                cells = [" ".join(self.para(p) for p in td.iter() if local(p.tag) == "p") or self.para(td)
                         for td in tr if local(td.tag) in {"td", "th"}]
                rows.append([c.replace("|", "\\|") for c in cells])
            if not rows:
                return []
            width = max(len(r) for r in rows)
            rows = [r + [""] * (width - len(r)) for r in rows]
            if head is None:  # Mallard tables often have no header row; Markdown needs one.
                rows.insert(0, [""] * width)
            lines = [f"{indent}{self.para(title).rstrip(':')}:", ""] if title is not None else []
            lines += ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * width]
            lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
            return lines + [""]
        if tag in {"if", "choose"}:
            return []
        # Unknown block: keep its text.
        text = self.para(el)
        return [f"{indent}{text}", ""] if text else []


def convert(page: Path, titles: dict[str, str]) -> tuple[str, str, list[str]]:
    root = ET.parse(page).getroot()
    page_id = root.get("id")
    conv = Converter(titles)
    title = conv.para(root.find(M + "title"))
    info = root.find(M + "info")
    authors = []
    desc = ""
    if info is not None:
        for credit in info.findall(M + "credit"):
            name = credit.find(M + "name")
            if name is not None and name.text:
                authors.append(name.text.strip())
        d = info.find(M + "desc")
        if d is not None:
            desc = conv.para(d)
    body = conv.blocks(root, 2)
    text = "\n".join(body)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    meta = ["---", f"title: {title}", f"url: {URL.format(page_id)}",
            "license: CC BY-SA 3.0 (https://creativecommons.org/licenses/by-sa/3.0/)",
            f"authors: {', '.join(dict.fromkeys(authors))}", "---", ""]
    head = f"{desc}\n\n" if desc else ""
    return page_id, "\n".join(meta) + head + text + "\n", authors


def main(argv: list[str]) -> int:
    src, dest, ids = Path(argv[0]), Path(argv[1]), argv[2:]
    titles = {}
    for page in src.glob("*.page"):
        root = ET.parse(page).getroot()
        t = root.find(M + "title")
        if t is not None:
            titles[root.get("id")] = re.sub(r"\s+", " ", "".join(t.itertext())).strip()
    dest.mkdir(parents=True, exist_ok=True)
    for page_id in ids:
        _, text, _ = convert(src / f"{page_id}.page", titles)
        (dest / f"{page_id}.md").write_text(text, encoding="utf-8")
        print(f"{page_id}.md {len(text)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
