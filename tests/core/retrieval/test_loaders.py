"""The file-format loaders (core.retrieval.loaders) on small files made in each test.

Every fixture is written programmatically into ``tmp_path``: HTML pages with site chrome, PDFs
written as raw bytes (a Helvetica text layer, or only a drawn rectangle), Word files made with
python-docx, a Confluence space export page, a Notion export (Markdown and HTML), and Zendesk /
Intercom JSON exports. Passages are checked through :func:`load_knowledge_base`, the path a build
takes, so titles, heading paths, citation URLs and skip reasons are what the index would hold.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from core.retrieval.loader import load_knowledge_base
from core.retrieval.loaders import UnusableFile
from core.retrieval.loaders.registry import read_documents


def passages_of(kb: Path, name: str):
    """The passages of one file of a freshly loaded knowledge base, in order."""
    result = load_knowledge_base(kb)
    return [p for p in result.passages if p.source == name]


def problems_of(kb: Path) -> dict[str, str]:
    return {p.path: p.reason for p in load_knowledge_base(kb).problems}


# --------------------------------------------------------------------------- HTML

CHROME_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Reset your password | Acme Help</title>
<link rel="canonical" href="https://help.acme.test/articles/reset-password">
<script>window.analytics = {};</script></head>
<body>
<div id="cookie-banner" class="cookie-consent"><p>We use cookies to improve your experience on our site.
By clicking Accept all you agree to the storing of cookies on your device.</p><button>Accept all</button></div>
<header class="site-header"><a class="logo" href="/">Acme Help Centre</a>
<nav aria-label="Main"><ul><li><a href="/billing">Billing and invoices</a></li>
<li><a href="/contact">Contact our sales team</a></li></ul></nav></header>
<nav class="breadcrumbs"><a href="/">Help</a> › <a href="/account">Account settings</a></nav>
<main><article>
<h1>Reset your password</h1>
<p>If you forgot your password, you can reset it from the sign-in page in a few minutes without contacting support.</p>
<h2>From the web app</h2>
<p>Open the sign-in page and click Forgot password. Enter the email address of your account and we send you a reset link that is valid for 24 hours.</p>
<h2>Reset link limits</h2>
<table><thead><tr><th>Plan</th><th>Links per day</th></tr></thead>
<tbody><tr><td>Free</td><td>3</td></tr><tr><td>Business</td><td>10</td></tr></tbody></table>
<p>After the limit is reached, wait until the next day or ask your administrator to reset it for you.</p>
</article>
<aside class="related"><h2>Related articles</h2><ul><li><a href="/2fa">Turn on two-factor sign-in</a></li></ul></aside>
</main>
<footer class="site-footer"><p>Copyright 2024 Acme Corporation. All rights reserved.</p>
<p><a href="/privacy">Privacy policy</a> · <a href="/terms">Terms of service</a></p></footer>
</body></html>"""

CHROME_WORDS = ("cookies", "Accept all", "Acme Help Centre", "Billing and invoices", "sales team",
                "Account settings", "Related articles", "two-factor", "Copyright", "Privacy policy", "analytics")


def test_html_keeps_the_article_and_drops_nav_footer_and_cookie_banner(tmp_path):
    (tmp_path / "reset.html").write_text(CHROME_PAGE, encoding="utf-8")
    passages = passages_of(tmp_path, "reset.html")

    assert [(p.title, p.headings, p.text) for p in passages] == [
        ("Reset your password", (),
         "If you forgot your password, you can reset it from the sign-in page in a few minutes without "
         "contacting support."),
        ("Reset your password", ("From the web app",),
         "Open the sign-in page and click Forgot password. Enter the email address of your account and we "
         "send you a reset link that is valid for 24 hours."),
        ("Reset your password", ("Reset link limits",),
         "Plan: Free; Links per day: 3.\nPlan: Business; Links per day: 10.\n\n"
         "After the limit is reached, wait until the next day or ask your administrator to reset it for you."),
    ]
    everything = "\n".join(p.embed_text for p in passages)
    for word in CHROME_WORDS:
        assert word not in everything, word
    # the canonical link is the citation link of every passage
    assert {p.url for p in passages} == {"https://help.acme.test/articles/reset-password"}
    assert [p.passage_id for p in passages] == ["reset.html#0", "reset.html#1", "reset.html#2"]


def test_html_short_article_loses_the_site_menu_too(tmp_path):
    """A two-sentence answer is too short for trafilatura's own boilerplate detection."""
    (tmp_path / "returns.htm").write_text(
        "<html><head><title>Returns - Acme</title></head><body>"
        "<header><nav><a href='/'>Help home</a> <a href='/returns'>Returns</a> <a href='/about'>About us</a></nav></header>"
        "<main><article><h1>Returns</h1><p>You can return an item within 30 days of delivery for a full refund.</p>"
        "</article></main><footer><p>Copyright 2024 Acme Corporation.</p></footer></body></html>", encoding="utf-8")
    (passage,) = passages_of(tmp_path, "returns.htm")
    assert passage.title == "Returns"
    assert passage.text == "You can return an item within 30 days of delivery for a full refund."
    assert passage.url is None  # a saved page without a canonical link has no public address


def test_html_key_value_table_becomes_key_value_rows(tmp_path):
    (tmp_path / "shortcuts.html").write_text(
        "<html><head><title>Keyboard shortcuts | Docs</title></head><body>"
        "<nav><table><tr><td>Menu entry one</td><td>Menu entry two</td></tr></table></nav><main>"
        "<h1>Keyboard shortcuts</h1><p>These shortcuts work in every window of the desktop application on all platforms.</p>"
        "<table><tr><th></th><th></th></tr><tr><td>Lock screen</td><td>Super+L</td></tr>"
        "<tr><td>Search</td><td>Ctrl+K</td></tr></table>"
        "<p>You can change every shortcut in the preferences dialog under Keyboard.</p></main>"
        "<footer><table><tr><td>Footer table cell</td></tr></table></footer></body></html>", encoding="utf-8")
    (passage,) = passages_of(tmp_path, "shortcuts.html")
    assert passage.title == "Keyboard shortcuts"
    assert passage.text == (
        "These shortcuts work in every window of the desktop application on all platforms.\n\n"
        "Lock screen: Super+L.\nSearch: Ctrl+K.\n\n"
        "You can change every shortcut in the preferences dialog under Keyboard."
    )


def test_html_title_falls_back_to_the_title_tag_without_its_site_part(tmp_path):
    (tmp_path / "page.html").write_text(
        "<html><head><title>Delete your account | Acme Help</title>"
        "<meta property='og:url' content='https://help.acme.test/delete'></head><body><main>"
        "<p>Deleting your account removes all projects and invoices after a grace period of fourteen days.</p>"
        "<p>Open Settings, choose Account and press Delete account, then confirm with your password.</p>"
        "</main></body></html>", encoding="utf-8")
    (document,) = read_documents(tmp_path / "page.html")
    assert document.title == "Delete your account"
    assert document.url == "https://help.acme.test/delete"  # og:url when there is no canonical link


def test_html_page_with_only_navigation_is_skipped_with_a_reason(tmp_path):
    (tmp_path / "menu.html").write_text(
        "<html><head><title>Menu</title></head><body><header><nav><ul><li><a href='/'>Home</a></li>"
        "<li><a href='/pricing'>Pricing</a></li><li><a href='/contact'>Contact</a></li></ul></nav></header>"
        "<footer><p>Copyright 2024 Acme</p></footer><script>var tracking = 1;</script></body></html>",
        encoding="utf-8")
    (tmp_path / "ok.md").write_text("# OK\nSomething to index.", encoding="utf-8")
    assert problems_of(tmp_path) == {"menu.html": "no article text found in the page (only navigation or scripts?)"}


def test_html_topic_page_that_only_lists_articles_is_skipped_but_a_pointer_article_is_kept(tmp_path):
    """A topic page's text is its articles' titles: it would outrank the article that answers."""
    (tmp_path / "topic.html").write_text(
        "<html><head><title>Bluetooth | Help</title></head><body><nav><a href='/'>Home</a> <a href='/wifi/'>Wi-Fi</a></nav>"
        "<main><h1>Bluetooth</h1><ul><li><a href='/bluetooth/connect'>Connect your computer to a Bluetooth device</a></li>"
        "<li><a href='/bluetooth/off'>Turn Bluetooth on or off</a></li></ul></main></body></html>", encoding="utf-8")
    (tmp_path / "single.html").write_text(
        "<html><body><main><h1>Files</h1><p><a href='/files/delete'>Delete files and folders</a></p></main></body></html>",
        encoding="utf-8")
    (tmp_path / "pointer.html").write_text(
        "<html><body><main><h1>Passwords</h1><p>To change the password of your account, see "
        "<a href='/user/password'>Change your password</a>.</p></main></body></html>", encoding="utf-8")
    reason = "only a list of links (a home, topic or category page), no article text"
    assert problems_of(tmp_path) == {"topic.html": reason, "single.html": reason}
    (passage,) = passages_of(tmp_path, "pointer.html")  # kept: most of its words are not link text
    assert "To change the password of your account, see" in passage.text


# --------------------------------------------------------------------------- PDF


def _pdf_string(text: str) -> str:
    return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def make_pdf(pages: list[list[str] | None], title: str | None = None) -> bytes:
    """A minimal valid PDF: each page a list of text lines in Helvetica, or None for a page without text.

    A page without text only paints a grey rectangle, which is what a scan looks like to a text
    extractor: content, but no text layer.
    """
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        ("<< /Type /Pages /Kids [" + " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
         + f"] /Count {len(pages)} >>").encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for i, lines in enumerate(pages):
        if lines is None:
            stream = b"0.5 g 72 500 300 200 re f"
        else:
            ops = ["BT", "/F1 12 Tf", "16 TL", "72 720 Td"] + [f"{_pdf_string(line)} Tj T*" for line in lines] + ["ET"]
            stream = "\n".join(ops).encode("latin-1")
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
                       f"/Contents {5 + 2 * i} 0 R >>".encode())
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    info = None
    if title:
        objects.append(f"<< /Title {_pdf_string(title)} >>".encode("latin-1"))
        info = len(objects)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    trailer = f"<< /Size {len(objects) + 1} /Root 1 0 R" + (f" /Info {info} 0 R" if info else "") + " >>"
    out += f"trailer\n{trailer}\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def test_pdf_gives_one_document_per_page_with_the_page_in_the_citation(tmp_path):
    (tmp_path / "router-manual.pdf").write_bytes(make_pdf([
        ["Router manual", "", "Plug the router into a power outlet and wait until", "the status light turns green."],
        ["Factory reset", "", "Hold the reset button for ten seconds to restore the", "factory settings."],
    ]))
    passages = passages_of(tmp_path, "router-manual.pdf")
    assert [(p.passage_id, p.title, p.extra, p.text) for p in passages] == [
        ("router-manual.pdf#p1-0", "Router manual (p. 1)", {"page": "1"},
         "Router manual\nPlug the router into a power outlet and wait until the status light turns green."),
        ("router-manual.pdf#p2-0", "Router manual (p. 2)", {"page": "2"},
         "Factory reset\nHold the reset button for ten seconds to restore the factory settings."),
    ]
    # A file has no public address: the citation names the file and the page.
    assert {(p.source, p.url, p.doc_id) for p in passages} == {("router-manual.pdf", None, "router-manual.pdf")}


def test_pdf_title_comes_from_metadata_else_the_file_name(tmp_path):
    (tmp_path / "warranty.pdf").write_bytes(make_pdf([["Keep the receipt as proof of purchase."]], title="Warranty Guide"))
    (tmp_path / "setup_steps.pdf").write_bytes(make_pdf([["first connect the cable, then switch the device on."]]))
    by_source = {p.source: p.title for p in load_knowledge_base(tmp_path).passages}
    assert by_source == {"warranty.pdf": "Warranty Guide (p. 1)", "setup_steps.pdf": "Setup steps (p. 1)"}


def test_pdf_page_without_text_is_left_out_and_numbering_is_kept(tmp_path):
    (tmp_path / "mixed.pdf").write_bytes(make_pdf([["Overview of the menu."], None, ["Cleaning the filter every month."]]))
    assert [(p.title, p.extra["page"]) for p in passages_of(tmp_path, "mixed.pdf")] == [
        ("Overview of the menu. (p. 1)", "1"), ("Overview of the menu. (p. 3)", "3")]


def test_pdf_without_text_layer_is_skipped_as_such(tmp_path):
    (tmp_path / "scan.pdf").write_bytes(make_pdf([None, None]))
    (tmp_path / "ok.md").write_text("# OK\nSomething to index.", encoding="utf-8")
    with pytest.raises(UnusableFile, match="no text layer"):
        read_documents(tmp_path / "scan.pdf")
    assert problems_of(tmp_path) == {
        "scan.pdf": "no text layer (2 page(s) of images: a scanned PDF?); run OCR on it first"}


# --------------------------------------------------------------------------- Word


def make_docx(path: Path, *, title_style: bool = True) -> Path:
    import docx

    document = docx.Document()
    document.core_properties.title = "Shipping (core properties)"
    if title_style:
        document.add_paragraph("Shipping policy", style="Title")
    document.add_paragraph("We ship to most countries in Europe within five working days.")
    document.add_heading("Delivery times", level=1)
    table = document.add_table(rows=3, cols=2)
    for r, (country, days) in enumerate([("Country", "Days"), ("Germany", "2"), ("France", "3")]):
        table.cell(r, 0).text = country
        table.cell(r, 1).text = days
    document.add_heading("Returns", level=2)
    for step in ("Pack the item", "Print the label", "Drop it at the post office"):
        document.add_paragraph(step, style="List Number")
    document.add_paragraph("Keep the receipt", style="List Bullet")
    document.save(path)
    return path


def test_docx_headings_tables_as_rows_and_lists(tmp_path):
    make_docx(tmp_path / "shipping.docx")
    passages = passages_of(tmp_path, "shipping.docx")
    assert [(p.title, p.headings, p.text) for p in passages] == [
        ("Shipping policy", (), "We ship to most countries in Europe within five working days."),
        ("Shipping policy", ("Delivery times",), "Country: Germany; Days: 2.\nCountry: France; Days: 3."),
        ("Shipping policy", ("Delivery times", "Returns"),
         "1. Pack the item\n2. Print the label\n3. Drop it at the post office\n- Keep the receipt"),
    ]
    assert {p.url for p in passages} == {None}


def test_docx_without_title_paragraph_uses_the_core_title(tmp_path):
    make_docx(tmp_path / "shipping.docx", title_style=False)
    assert {p.title for p in passages_of(tmp_path, "shipping.docx")} == {"Shipping (core properties)"}


# --------------------------------------------------------------------------- Confluence

CONFLUENCE_PAGE = """<!DOCTYPE html><html><head><title>IT Help : VPN setup</title>
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8"></head><body class="theme-default aui-theme-default">
<div id="page"><div id="main" class="aui-page-panel"><div id="main-header">
<div id="breadcrumb-section"><ol id="breadcrumbs"><li class="first"><span><a href="index.html">IT Help</a></span></li>
<li><span><a href="Home_65538.html">Home</a></span></li></ol></div>
<h1 id="title-heading" class="pagetitle"><span id="title-text">IT Help : VPN setup</span></h1></div>
<div id="content" class="view"><div class="page-metadata">Created by <span class="author">Jane Admin</span>, last modified on Mar 03, 2024</div>
<div id="main-content" class="wiki-content group">
<h2 id="VPNsetup-Installtheclient">Install the client</h2>
<p>Download the VPN client from the software portal and sign in with your work account.</p>
<p><span class="confluence-embedded-file-wrapper"><img class="confluence-embedded-image" src="attachments/123456/789/thumb.png"
 data-image-src="attachments/123456/789/client.png" alt="client"></span></p>
<p>Ask IT if the portal is down <img class="emoticon emoticon-smile" src="images/icons/emoticons/smile.svg" alt="(smile)"></p>
<h2 id="VPNsetup-Servers">Servers</h2>
<div class="table-wrap"><table class="confluenceTable"><tbody><tr><th class="confluenceTh">Region</th><th class="confluenceTh">Server</th></tr>
<tr><td class="confluenceTd">Europe</td><td class="confluenceTd">vpn-eu.example.com</td></tr>
<tr><td class="confluenceTd">US</td><td class="confluenceTd">vpn-us.example.com</td></tr></tbody></table></div>
</div>
<div class="pageSection group"><div class="pageSectionHeader"><h2 id="attachments" class="pageSectionTitle">Attachments:</h2></div>
<div class="greybox" align="left"><img src="images/icons/bullet_blue.gif" height="8" width="8" alt=""/>
<a href="attachments/123456/789.png">client.png</a> (image/png)<br/></div></div>
</div></div>
<div id="footer" role="contentinfo"><section class="footer-body"><p>Document generated by Confluence on Mar 04, 2024 10:00</p>
<div id="footer-logo"><a href="http://www.atlassian.com/">Atlassian</a></div></section></div></div></body></html>"""


def test_confluence_export_keeps_main_content_only(tmp_path):
    space = tmp_path / "IT"
    (space / "attachments" / "123456" / "789").mkdir(parents=True)
    (space / "attachments" / "123456" / "789" / "client.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (space / "VPN-setup_123456.html").write_text(CONFLUENCE_PAGE, encoding="utf-8")
    result = load_knowledge_base(tmp_path)
    passages = [p for p in result.passages if p.source == "IT/VPN-setup_123456.html"]

    assert [(p.title, p.headings, p.text) for p in passages] == [
        ("VPN setup", ("Install the client",),
         "Download the VPN client from the software portal and sign in with your work account.\n\n"
         "Ask IT if the portal is down"),
        ("VPN setup", ("Servers",), "Region: Europe; Server: vpn-eu.example.com.\nRegion: US; Server: vpn-us.example.com."),
    ]
    # the embedded image is the attachment (data-image-src), not the thumbnail; emoticons go
    assert passages[0].extra == {"images": "attachments/123456/789/client.png"}
    assert passages[0].images == ()  # an export file has no public address: never sent with an answer
    text = "\n".join(p.embed_text for p in passages)
    for chrome in ("Jane Admin", "last modified", "Attachments", "Document generated", "Atlassian", "IT Help", "smile"):
        assert chrome not in text, chrome
    # the attachment itself is reported, not indexed as text
    assert {p.path: p.reason for p in result.problems} == {
        "IT/attachments/123456/789/client.png": "unsupported file type .png; an attachment, not indexed as text"}


# --------------------------------------------------------------------------- Notion

BILLING_ID = "0123456789abcdef0123456789abcdef"
REFUNDS_ID = "fedcba9876543210fedcba9876543210"
SHIPPING_ID = "00112233445566778899aabbccddeeff"


def write_notion_export(root: Path) -> None:
    """``Billing <id>.md`` with its child page and attachment in ``Billing <id>/``, and an HTML page."""
    folder = root / f"Billing {BILLING_ID}"
    folder.mkdir(parents=True)
    (root / f"Billing {BILLING_ID}.md").write_text(
        f"# Billing\n\nCreated: March 3, 2024 10:00 AM\nTags: billing, invoices\n\n"
        f"Everything about invoices and payments.\n\n[Refunds](Billing%20{BILLING_ID}/Refunds%20{REFUNDS_ID}.md)\n",
        encoding="utf-8")
    (folder / f"Refunds {REFUNDS_ID}.md").write_text(
        f"# Refunds\n\nLast edited time: April 1, 2024 9:00 AM\nTags: refunds\nURL: https://help.example.com/refunds\n\n"
        f"Refunds are paid back to the original card within 5 days.\n\n![Untitled](Billing%20{BILLING_ID}/Untitled.png)\n",
        encoding="utf-8")
    (folder / "Untitled.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (root / f"Shipping {SHIPPING_ID}.html").write_text(
        f'<html><head><meta charset="utf-8"/><title>Shipping</title></head><body>'
        f'<article id="{SHIPPING_ID}" class="page sans"><header><h1 class="page-title">Shipping</h1>'
        f'<table class="properties"><tbody><tr class="property-row"><th>Created</th><td>March 3, 2024</td></tr>'
        f'</tbody></table></header><div class="page-body"><p>We ship worldwide from our warehouse in Rotterdam.</p>'
        f"<h2>Costs</h2><p>Shipping is free above 50 euros.</p></div></article></body></html>", encoding="utf-8")


def test_notion_markdown_export_loses_ids_and_property_lines(tmp_path):
    write_notion_export(tmp_path)
    result = load_knowledge_base(tmp_path)
    by_title = {p.title: p for p in result.passages}

    billing = by_title["Billing"]
    assert billing.source == f"Billing {BILLING_ID}.md"
    assert billing.text == "Everything about invoices and payments.\n\nRefunds"  # the child-page link as its name
    assert billing.extra == {"tags": "billing, invoices"}  # Tags kept, Created dropped
    assert billing.url is None

    refunds = by_title["Refunds"]
    assert refunds.source == f"Billing {BILLING_ID}/Refunds {REFUNDS_ID}.md"
    assert refunds.text == "Refunds are paid back to the original card within 5 days."
    assert refunds.url == "https://help.example.com/refunds"  # the URL property is the citation link
    assert refunds.extra["tags"] == "refunds"
    assert refunds.extra["images"] == f"Billing%20{BILLING_ID}/Untitled.png"
    assert refunds.images == ()  # relative export path: metadata only
    everything = "\n".join(p.embed_text for p in result.passages)
    assert BILLING_ID not in everything and REFUNDS_ID not in everything
    assert "Last edited" not in everything and "Created" not in everything


def test_notion_html_export_takes_the_page_body(tmp_path):
    write_notion_export(tmp_path)
    passages = passages_of(tmp_path, f"Shipping {SHIPPING_ID}.html")
    assert [(p.title, p.headings, p.text) for p in passages] == [
        ("Shipping", (), "We ship worldwide from our warehouse in Rotterdam."),
        ("Shipping", ("Costs",), "Shipping is free above 50 euros."),
    ]
    assert "March 3" not in "\n".join(p.embed_text for p in passages)  # the properties table is not the body


# --------------------------------------------------------------------------- Zendesk / Intercom JSON


def test_zendesk_export_one_document_per_published_article(tmp_path):
    (tmp_path / "zendesk.json").write_text(json.dumps({"articles": [
        {"id": 360001, "title": "Change your  plan", "draft": False, "label_names": ["billing", "plans"],
         "html_url": "https://acme.zendesk.com/hc/en-us/articles/360001-Change-your-plan",
         "body": '<p>Open <strong>Settings</strong> and pick a new plan.</p>'
                 '<p><img src="/hc/article_attachments/1/plan.png" alt="Plans"></p>'},
        {"id": 360002, "title": "Secret draft", "draft": True, "html_url": "https://acme.zendesk.com/hc/en-us/articles/360002",
         "body": "<p>Not ready yet for customers.</p>"},
    ], "count": 2, "next_page": None}), encoding="utf-8")
    (passage,) = passages_of(tmp_path, "zendesk.json")
    assert passage.passage_id == "zendesk.json#360001#0"
    assert passage.doc_id == "zendesk.json#360001"
    assert passage.title == "Change your plan"  # whitespace normalised
    assert passage.text == "Open Settings and pick a new plan."
    assert passage.url == "https://acme.zendesk.com/hc/en-us/articles/360001-Change-your-plan"
    assert passage.extra == {"tags": "billing, plans", "images": "https://acme.zendesk.com/hc/article_attachments/1/plan.png"}
    assert passage.images == ("https://acme.zendesk.com/hc/article_attachments/1/plan.png",)


def test_intercom_export_keeps_published_articles_with_their_urls(tmp_path):
    (tmp_path / "intercom.json").write_text(json.dumps({"type": "list", "data": [
        {"id": "8001", "type": "article", "title": "Export your data", "state": "published",
         "url": "https://help.acme.io/en/articles/8001-export-your-data",
         "body": "<h2>CSV export</h2><p>Go to Reports and click Export to download a CSV file.</p>"},
        {"id": "8002", "type": "article", "title": "Unpublished thing", "state": "draft",
         "url": "https://help.acme.io/en/articles/8002", "body": "<p>Hidden text.</p>"},
    ], "pages": {"type": "pages", "page": 1, "total_pages": 1}}), encoding="utf-8")
    (passage,) = passages_of(tmp_path, "intercom.json")
    assert (passage.passage_id, passage.title, passage.headings, passage.text, passage.url) == (
        "intercom.json#8001#0", "Export your data", ("CSV export",),
        "Go to Reports and click Export to download a CSV file.", "https://help.acme.io/en/articles/8001-export-your-data")


def test_json_export_with_only_drafts_or_no_articles_is_skipped(tmp_path):
    (tmp_path / "drafts.json").write_text(json.dumps([{"id": 1, "title": "T", "body": "<p>x</p>", "draft": True}]))
    (tmp_path / "users.json").write_text(json.dumps({"users": [{"id": 1, "name": "Ann"}]}))
    (tmp_path / "ok.md").write_text("# OK\nSomething to index.", encoding="utf-8")
    assert problems_of(tmp_path) == {
        "drafts.json": "no published article with text (1 draft(s) left out)",
        "users.json": 'JSON is not an article export: expected a list of articles with title and body '
                      '(Zendesk {"articles": […]}, Intercom {"data": […]})',
    }


# --------------------------------------------------------------------------- broken files


def test_corrupt_files_are_skipped_with_reasons_and_the_build_goes_on(tmp_path):
    (tmp_path / "truncated.pdf").write_bytes(make_pdf([["Some text."]])[:60])
    (tmp_path / "garbage.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog garbage")
    (tmp_path / "empty.pdf").write_bytes(b"")
    (tmp_path / "not-a-zip.docx").write_bytes(b"this is not a zip file at all")
    with zipfile.ZipFile(tmp_path / "other-zip.docx", "w") as archive:
        archive.writestr("hello.txt", "hi")
    (tmp_path / "broken.json").write_text('{"articles": [ {"id": 1, "title": ', encoding="utf-8")
    (tmp_path / "blank.html").write_text("  \n", encoding="utf-8")
    make_docx(tmp_path / "good.docx")
    (tmp_path / "good.md").write_text("# Good\nThis one is fine.", encoding="utf-8")

    result = load_knowledge_base(tmp_path)
    assert sorted({p.source for p in result.passages}) == ["good.docx", "good.md"]
    assert result.files == 9
    reasons = {p.path: p.reason for p in result.problems}
    assert sorted(reasons) == ["blank.html", "broken.json", "empty.pdf", "garbage.pdf", "not-a-zip.docx",
                               "other-zip.docx", "truncated.pdf"]
    assert reasons["empty.pdf"] == reasons["blank.html"] == "empty file"
    assert reasons["broken.json"] == "not valid JSON (Expecting value: line 1 column 35 (char 34))"
    for name in ("garbage.pdf", "truncated.pdf"):
        assert reasons[name].startswith("not a readable PDF ("), reasons[name]
        assert reasons[name].endswith("); export it again from the original"), reasons[name]
    for name in ("not-a-zip.docx", "other-zip.docx"):
        assert reasons[name].startswith("not a readable Word .docx ("), reasons[name]
        assert reasons[name].endswith("); save it again as .docx"), reasons[name]


def test_an_unexpected_parser_exception_skips_only_that_file(tmp_path, monkeypatch):
    import core.retrieval.loaders.registry as registry

    def explode(path):
        raise RecursionError("maximum recursion depth exceeded in the object stream")

    monkeypatch.setattr(registry, "load_pdf", explode)
    (tmp_path / "weird.pdf").write_bytes(make_pdf([["Some text."]]))
    (tmp_path / "good.md").write_text("# Good\nThis one is fine.", encoding="utf-8")
    result = load_knowledge_base(tmp_path)
    assert [p.source for p in result.passages] == ["good.md"]
    assert {p.path: p.reason for p in result.problems} == {
        "weird.pdf": "could not be read (RecursionError: maximum recursion depth exceeded in the object stream); "
                     "check the file opens"}
