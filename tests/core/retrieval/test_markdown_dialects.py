"""Markdown dialects (GitHub, Obsidian) become plain prose and clean table rows at indexing time.

No model is loaded here: only the normaliser, the chunker and the loader run.
"""

from __future__ import annotations

import json
import logging

from core.retrieval.chunking import chunk_text, parse_front_matter
from core.retrieval.loader import load_knowledge_base, load_text_file
from core.retrieval.passages import Passage
from core.retrieval.markdown import Vault, normalise_markdown, normalise_plain_text
from tests.conftest import write_kb


def norm(body: str, vault: Vault | None = None, source=None) -> str:
    return normalise_markdown(body, vault, source).plain


# --- front matter -----------------------------------------------------------------------------


def test_front_matter_yaml_lists_and_quotes():
    text = (
        "---\n"
        'title: "Returns: the rules"\n'
        "url: 'https://help.example/returns'\n"
        "aliases:\n  - Refunds\n  - Money back\n"
        "tags: [billing, returns]\n"
        "published: 2024-05-01\n"
        "---\n# Returns\nBody"
    )
    meta, body = parse_front_matter(text)
    assert meta == {
        "title": "Returns: the rules",
        "url": "https://help.example/returns",
        "aliases": "Refunds, Money back",
        "tags": "billing, returns",
        "published": "2024-05-01",
    }
    assert body == "# Returns\nBody"


def test_front_matter_scalars_keep_their_written_form():
    meta, _ = parse_front_matter("---\ntitle: No\nversion: 1.10\n---\nBody")
    assert meta == {"title": "No", "version": "1.10"}


def test_malformed_front_matter_falls_back_to_key_value_lines():
    meta, body = parse_front_matter("---\ntitle: Returns: [unclosed\nurl: https://x.example/r\n  bad: : :\n---\nBody")
    assert meta == {"title": "Returns: [unclosed", "url": "https://x.example/r"}
    assert body == "Body"


def test_front_matter_tags_reach_passage_extra(tmp_path):
    kb = write_kb(tmp_path / "kb", {"a.md": "---\ntitle: A\ntags:\n  - one\n  - two\n---\nText here."})
    (passage,) = load_knowledge_base(kb).passages
    assert passage.title == "A"
    assert passage.extra == {"tags": "one, two"}


# --- comments, inline markup ----------------------------------------------------------------------


def test_html_comments_are_removed_also_multiline():
    body = "Before <!-- inline --> after.\n<!-- a whole\nparagraph of\ncomment -->\nNext line.\n\n<!-- alone -->\n\nLast."
    assert norm(body) == "Before after.\nNext line.\n\nLast."


def test_obsidian_comments_and_block_ids_are_removed():
    body = "Keep this. %%hidden%%\n%%\nmulti\nline\n%%\nA line with an id ^abc-123\n\nParagraph.\n^para1"
    assert norm(body) == "Keep this.\nA line with an id\n\nParagraph."


def test_bold_and_emphasis_but_not_snake_case_or_arithmetic():
    body = "Use **bold**, __strong__, *em*, _em_ and ***both***; keep snake_case_name, 2*3*4 and a_b_c."
    assert norm(body) == "Use bold, strong, em, em and both; keep snake_case_name, 2*3*4 and a_b_c."


def test_emphasis_and_links_may_span_soft_line_breaks():
    assert norm("This is **bold\nacross lines** and [a link\nsplit](https://x.example) here.") == (
        "This is bold\nacross lines and a link\nsplit here."
    )


def test_code_spans_keep_text_and_shortcuts():
    assert norm("Press `Ctrl+Shift+V` to paste; `**not bold**` stays.") == "Press Ctrl+Shift+V to paste; **not bold** stays."


def test_links_autolinks_and_escapes():
    body = "See [the guide](https://x.example/g \"Guide\") or <https://y.example/z>, mail <help@x.example>. 5 \\* 3"
    assert norm(body) == "See the guide or https://y.example/z, mail help@x.example. 5 * 3"


def test_images_are_removed_from_prose_and_collected():
    doc = normalise_markdown('Intro ![Logo](img/logo.png "Logo") text.\n\n![[diagram.png]]\n\nMore.')
    assert doc.plain == "Intro text.\n\nMore."
    assert doc.images == ["img/logo.png", "diagram.png"]


def test_images_land_in_the_passage_extra(tmp_path):
    kb = write_kb(tmp_path / "kb", {"a.md": "# A\nSee the screen. ![Shot](shots/one.png)\n\n![[two.png]]\n"})
    (passage,) = load_knowledge_base(kb).passages
    assert passage.text == "See the screen."
    assert passage.extra == {"images": "shots/one.png, two.png"}
    assert Passage.from_dict(json.loads(json.dumps(passage.to_dict()))) == passage  # as the index stores it


# --- Obsidian links and embeds -----------------------------------------------------------------------


def test_wikilinks_alias_section_and_plain():
    body = "See [[Returns]], [[Returns|the returns page]], [[Returns#Electronics]], [[#Local part]], [[guides/Setup.md]] and [[Note#^abc]]."
    assert norm(body) == "See Returns, the returns page, Returns › Electronics, Local part, Setup and Note."


def _vault(tmp_path):
    kb = write_kb(
        tmp_path / "kb",
        {
            "host.md": "x",
            "Shipping.md": (
                "---\ntitle: Shipping\n---\n# Shipping\nWe ship fast.\n\n## Rates\nStandard costs $5.\n\n### Express\n"
                "Express costs $10.\n\n## Areas\nUS only.\n\n- Canada soon ^canada\n- Mexico later\n\n"
                "Para one line.\nPara **two** line. ^twolines\n"
            ),
        },
    )
    (kb / "sub").mkdir()
    (kb / "sub" / "Deep Note.md").write_text("Deep body.", encoding="utf-8")
    return kb, Vault(kb)


def test_whole_note_embed_inlines_the_body_without_front_matter(tmp_path):
    kb, vault = _vault(tmp_path)
    assert norm("Before.\n\n![[deep note]]\n\nAfter.", vault, kb / "host.md") == "Before.\n\nDeep body.\n\nAfter."


def test_note_embed_headings_do_not_become_host_headings(tmp_path):
    kb, vault = _vault(tmp_path)
    text = norm("## Host\n![[Shipping.md]]\nHost tail.", vault, kb / "host.md")
    assert [line for line in text.splitlines() if line.startswith("#")] == ["## Host"]
    assert "Express costs $10." in text and "^canada" not in text


def test_section_embed_stops_at_same_or_higher_heading(tmp_path):
    kb, vault = _vault(tmp_path)
    assert norm("![[shipping#Rates]]", vault, kb / "host.md") == "Standard costs $5.\n\nExpress\n\nExpress costs $10."


def test_block_embeds_list_item_and_paragraph(tmp_path):
    kb, vault = _vault(tmp_path)
    assert norm("![[Shipping#^canada]]", vault, kb / "host.md") == "- Canada soon"
    assert norm("![[Shipping#^twolines]]", vault, kb / "host.md") == "Para one line.\nPara two line."
    assert norm("Also ![[Shipping#^canada]] maybe.", vault, kb / "host.md") == "Also Canada soon maybe."


def test_embed_in_callout_keeps_quote_prefix(tmp_path):
    kb, vault = _vault(tmp_path)
    assert norm("> [!info] From shipping\n> ![[Shipping#^canada]]", vault, kb / "host.md") == "Info: From shipping\n- Canada soon"


def test_embed_cycle_is_cut(tmp_path, caplog):
    kb = write_kb(tmp_path / "kb", {"a.md": "A text.\n\n![[b]]", "b.md": "B text.\n\n![[a]]"})
    with caplog.at_level(logging.WARNING):
        passages = load_knowledge_base(kb).passages
    texts = {p.doc_id: p.text for p in passages}
    assert texts == {"a.md": "A text.\n\nB text.", "b.md": "B text.\n\nA text."}
    assert "loop" in caplog.text


def test_embed_depth_is_limited(tmp_path, caplog):
    kb = write_kb(tmp_path / "kb", {f"n{i}.md": f"N{i}.\n\n![[n{i + 1}]]" for i in range(6)})
    with caplog.at_level(logging.WARNING):
        text = norm("![[n0]]", Vault(kb), kb / "host.md")
    assert text == "N0.\n\nN1.\n\nN2."
    assert "deeper" in caplog.text


def test_missing_embed_is_dropped_with_a_warning(tmp_path, caplog):
    kb = write_kb(tmp_path / "kb", {"a.md": "Before.\n\n![[Nowhere]]\n\n![[a#No such heading]]\n\nAfter."})
    with caplog.at_level(logging.WARNING):
        result = load_knowledge_base(kb)
    assert [p.text for p in result.passages] == ["Before.\n\nAfter."]
    assert not result.problems
    assert "not found" in caplog.text and "no section" in caplog.text


# --- callouts and quotes -----------------------------------------------------------------------------------


def test_callouts_and_plain_quotes_are_unquoted():
    body = (
        "> [!warning]- Check **first**\n> Refunds take 5 days.\n>\n> - Keep the receipt\n\n"
        "> [!tip]\n> Use the app.\n\n"
        "> [!IMPORTANT]\n> - one\n\n"
        "> Plain quote\n> > nested"
    )
    assert norm(body) == (
        "Warning: Check first\nRefunds take 5 days.\n\n- Keep the receipt\n\n"
        "Tip: Use the app.\n\n"
        "Important:\n- one\n\n"
        "Plain quote\nnested"
    )


# --- tables ------------------------------------------------------------------------------------------------------


def test_table_rows_become_lines():
    body = (
        "Rates:\n\n"
        "| Method | **Price** | Notes |\n"
        "|:-------|------:|:---:|\n"
        "| Standard | $5 | [Tracked](https://x.example) |\n"
        "| Express \\| Air | $10; fast | |\n"
        "|  |  |  |\n"
        "| `Pickup` | free | Ends in 3 days. |\n\n"
        "After."
    )
    assert norm(body) == (
        "Rates:\n\n"
        "Method: Standard; Price: $5; Notes: Tracked.\n"
        "Method: Express | Air; Price: $10, fast.\n"
        "Method: Pickup; Price: free; Notes: Ends in 3 days.\n\n"
        "After."
    )


def test_table_without_header_row_uses_first_row():
    assert norm("| Plan | Price |\n| Basic | $5 |\n| Pro | $9 |") == "Plan: Basic; Price: $5.\nPlan: Pro; Price: $9."


def test_key_value_table_with_empty_header_row():
    body = "|  |  |\n|---|---|\n| Ctrl+A | Select all. |\n| **Ctrl+X** | Cut |\n\n| | Std | Exp |\n|--|--|--|\n| Price | $5 | $10 |"
    assert norm(body) == "Ctrl+A: Select all.\nCtrl+X: Cut.\n\nPrice; Std: $5; Exp: $10."


def test_table_rows_are_separate_sentences_and_split_only_between_rows():
    rows = "\n".join(f"| Item {i} | Costs ${i}. Ships fast. |" for i in range(40))
    text = norm("## Prices\n| Item | Detail |\n|---|---|\n" + rows)
    lines = text.splitlines()[1:]
    assert lines[0] == "Item: Item 0; Detail: Costs $0. Ships fast."
    assert len(lines) == 40
    chunks = chunk_text(text, max_chars=300, overlap=80)
    assert len(chunks) > 3 and all(len(c.text) <= 300 for c in chunks)
    for chunk in chunks:
        for line in chunk.text.split("\n"):
            if line:
                assert line in lines, line  # every line is a whole row: never cut, never merged


# --- lists and code ---------------------------------------------------------------------------------------------


def test_list_markers_stay_and_bold_inside_goes():
    body = "- **Standard shipping:** 3-5 business days\n* _Express_ shipping\n  - nested `code`\n1. **Step** one\n- [x] Done task\n- [ ] Open task"
    assert norm(body) == (
        "- Standard shipping: 3-5 business days\n* Express shipping\n  - nested code\n1. Step one\n- Done task (done)\n- Open task"
    )


def test_fenced_code_stays_verbatim():
    code = "```bash\necho **x** [[y]] <!-- z --> %%w%%  \n\n\n| a | b |\n|---|---|\n> [!note]\n```"
    assert norm(f"Run:\n\n{code}\n\nDone **now**.\n\n~~~\n_x_ `y`\n~~~") == f"Run:\n\n{code}\n\nDone now.\n\n~~~\n_x_ `y`\n~~~"


def test_headings_are_cleaned_and_still_make_the_path(tmp_path):
    kb = write_kb(tmp_path / "kb", {"a.md": "# **Guide**\n\n## Use [[Tool|the tool]]\nText **here**.\n\nSetext\n------\nMore."})
    passages = load_knowledge_base(kb).passages
    assert [(p.title, p.headings, p.text) for p in passages] == [
        ("Guide", ("Use the tool",), "Text here."),
        ("Guide", ("Setext",), "More."),
    ]


def test_plain_text_files_only_lose_comments():
    assert normalise_plain_text("Keep **this** [[as is]].\n<!-- gone -->\nNext.").text == "Keep **this** [[as is]].\nNext."


def test_load_text_file_still_works_without_kb_dir(tmp_path):
    write_kb(tmp_path, {"a.md": "Text with ![[b]].", "b.md": "embedded"})
    (passage,) = load_text_file(tmp_path / "a.md", "a.md", 900, 120)
    assert passage.text == "Text with embedded."


# --- end to end -----------------------------------------------------------------------------------------------


def test_obsidian_vault_passages_have_no_markup_left(tmp_path):
    kb = write_kb(
        tmp_path / "vault",
        {
            "Returns.md": (
                "---\ntitle: Returns\naliases: [Refunds]\ntags:\n  - billing\n---\n"
                "# Returns\n<!-- editor note -->\nYou can return items within **30 days**. ^window\n\n"
                "> [!warning] Electronics\n> Only *15 days* for [[Electronics|electronics]].\n\n"
                "| Item | Window |\n|---|---|\n| Clothes | 30 days |\n| Phones | 15 days |\n\n"
                "%%todo: check%%\n![[Shipping#Costs]]\n"
            ),
            "Shipping.md": "# Shipping\n## Costs\n- **Standard:** $5 ^std\n- **Express:** $10\n\n## Areas\nUS.",
            "FAQ.md": "# FAQ\nHow long? ![[Returns#^window]]\n\nSee [[Returns#Returns|returns]] and ![[photo.jpg]].",
        },
    )
    (kb / "Electronics.md").write_text("Fifteen days.", encoding="utf-8")
    result = load_knowledge_base(kb)
    assert not result.problems
    text = "\n".join(p.text for p in result.passages)
    for raw in ("[[", "]]", "**", "|---", "<!--", "^window", "^std", "> [!", "%%"):
        assert raw not in text, raw
    returns = "\n\n".join(p.text for p in result.passages if p.doc_id == "Returns.md")
    assert returns == (
        "You can return items within 30 days.\n\n"
        "Warning: Electronics\nOnly 15 days for electronics.\n\n"
        "Item: Clothes; Window: 30 days.\nItem: Phones; Window: 15 days.\n\n"
        "- Standard: $5\n- Express: $10"
    )
    faq = next(p for p in result.passages if p.doc_id == "FAQ.md")
    assert faq.text == "How long? You can return items within 30 days.\n\nSee returns and."
    assert faq.extra == {"images": "photo.jpg"}


def test_link_urls_with_parentheses_and_reference_definitions():
    body = "See [Foo](https://en.wikipedia.org/wiki/Foo_(bar)) and [docs][d].\n\n[d]: https://x.example \"Docs\"\n[Step 1]: open the app"
    assert norm(body) == "See Foo and docs.\n\n[Step 1]: open the app"


def test_note_names_with_dots_are_notes_not_attachments(tmp_path):
    kb = write_kb(tmp_path / "kb", {"Release 1.2.md": "New in 1.2."})
    doc = normalise_markdown("![[Release 1.2]]\n\n![[manual.pdf]]", Vault(kb))
    assert (doc.plain, doc.images) == ("New in 1.2.", ["manual.pdf"])


def test_a_note_may_embed_its_own_section(tmp_path):
    kb = write_kb(tmp_path / "kb", {"a.md": "## Top\n![[#Detail]]\n\n## Detail\nThe detail."})
    assert [p.text for p in load_knowledge_base(kb).passages] == ["The detail.", "The detail."]


def test_long_key_value_table_is_split_only_between_rows():
    rows = "\n".join(f"| Super+{i} | Do thing {i}. Then more. |" for i in range(30))
    chunks = chunk_text(norm("|  |  |\n|---|---|\n" + rows), max_chars=200, overlap=60)
    lines = [f"Super+{i}: Do thing {i}. Then more." for i in range(30)]
    assert len(chunks) > 3
    assert {line for c in chunks for line in c.text.split("\n") if line} == set(lines)
    assert all("\n\n" not in c.text for c in chunks)


def test_overlap_rows_continue_the_next_table_block():
    first = "".join(f"| A{i} | one {i}. |\n" for i in range(4))
    second = "".join(f"| B{i} | two {i}. |\n" for i in range(4))
    text = norm("|  |  |\n|--|--|\n" + first + "\n|  |  |\n|--|--|\n" + second)
    chunks = chunk_text(text, max_chars=80, overlap=20)
    assert [c.text for c in chunks] == ["A0: one 0.\nA1: one 1.\nA2: one 2.\nA3: one 3.", "A3: one 3.\nB0: two 0.\nB1: two 1.\nB2: two 2.\nB3: two 3."]
