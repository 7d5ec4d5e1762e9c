"""Two scopes, two knowledge bases with distinct facts: nothing crosses from one to the other.

The real pipeline (real embedder, BM25, speller, gate, composed answers) runs over two indexes
built by the real rebuild command; only the generator is left out (``answer_mode=compose``).
Every answer is checked for citations, related articles, contact details and fact codes of
the other scope's knowledge base.
"""

from __future__ import annotations

import argparse

import pytest

from core.messages import Answer, IncomingMessage
from tests.conftest import make_settings, write_kb

HR_KB = {
    "vacation.md": "# Vacation days\n\nEvery employee has 27 paid vacation days per year (policy HRX-101). "
    "Request vacation in the Workday portal at least two weeks ahead; your manager approves it.\n",
    "payroll.md": "# Payroll dates\n\nSalaries are paid on the 25th of each month (policy HRX-102). "
    "Payslips appear in Workday the day before payday.\n",
    "vpn.md": "# Connecting to the VPN\n\nInstall GlobalProtect and connect to vpn.corp.internal with your "
    "staff account (policy HRX-103). The VPN is required for the intranet when working from home.\n",
    "laptop.md": "# Requesting a new laptop\n\nStaff laptops are replaced every three years (policy HRX-104). "
    "Open an IT ticket in ServiceNow to request a replacement laptop.\n",
    "expenses.md": "# Travel expenses\n\nSubmit travel expense claims in Concur within 30 days of the trip "
    "(policy HRX-105). Receipts above 25 euros must be attached.\n",
    "parental.md": "# Parental leave\n\nParents get 16 weeks of fully paid parental leave (policy HRX-106). "
    "Tell HR at least eight weeks before the leave starts.\n",
    "helpdesk.md": "# Contact the IT helpdesk\n\nCall the IT helpdesk on +1 555 0100 or write to "
    "it-helpdesk@corp.internal (policy HRX-107).\n",
}
SHOP_KB = {
    "shipping.md": "# Shipping countries\n\nWe ship to Germany, France and Spain (rule SHP-201). "
    "Standard delivery takes 3 to 5 business days.\n",
    "returns.md": "# Returning an item\n\nYou can return an item within 14 days of delivery (rule SHP-202). "
    "Print the return label from your order page and drop the parcel at any post office.\n",
    "gift.md": "# Gift cards\n\nGift cards are valid for two years after purchase (rule SHP-203). "
    "They can be used for any product in our online store.\n",
    "payment.md": "# Payment methods\n\nWe accept Visa, Mastercard and PayPal at checkout (rule SHP-204).\n",
    "tracking.md": "# Tracking your order\n\nThe tracking number is in your shipping confirmation e-mail "
    "(rule SHP-205). Enter it on the carrier's website to follow the parcel.\n",
    "contact.md": "# Contact customer support\n\nWrite to support@shop.example or call +44 20 7946 0000 "
    "(rule SHP-206), Monday to Friday.\n",
}
HR_QUESTIONS = [
    "How many vacation days do I get?", "How do I request vacation?", "When are salaries paid?",
    "Where do I find my payslip?", "How do I connect to the VPN?", "Which VPN client should I install?",
    "How do I get a new laptop?", "How often are laptops replaced?", "How do I submit travel expenses?",
    "Do I need receipts for expense claims?", "How long is parental leave?", "What is the IT helpdesk phone number?",
    "vacation days", "payroll date", "VPN from home",
]
SHOP_QUESTIONS = [
    "Which countries do you ship to?", "How long does delivery take?", "How do I return an item?",
    "How long do I have to return something?", "How long is a gift card valid?", "Which payment methods do you accept?",
    "Can I pay with PayPal?", "Where is my tracking number?", "How do I contact customer support?",
    "return label", "gift cards", "shipping to Spain",
]
HR_MARKERS = ("HRX-", "Workday", "GlobalProtect", "corp.internal", "Concur", "ServiceNow", "555 0100")
SHOP_MARKERS = ("SHP-", "shop.example", "PayPal", "Mastercard", "7946")

SCOPES_YAML = """
unknown: {unknown}
scopes:
  - name: support
    kb_dir: shop_kb
    index_dir: indexes/support
    audiences:
      - platform: slack
        channels: [CSUPPORT]
        external: true
  - name: internal
    kb_dir: hr_kb
    index_dir: indexes/internal
    audiences:
      - platform: slack
        teams: [TINTERNAL]
      - platform: terminal
  - name: customers
    kb_dir: shop_kb
    index_dir: indexes/customers
    audiences:
      - platform: telegram
        chat_types: [private]
      - platform: telegram
        chats: [-100777]
"""


def slack(text, team="TINTERNAL", channel="CGENERAL", user_team=None, shared=False, user="U1"):
    return IncomingMessage(text=text, platform="slack", conversation_id=f"{team}:{channel}", thread_id="1.1",
                           user_id=user, team_id=team, channel_id=channel, user_team_id=user_team or team,
                           shared_channel=shared, is_direct=False, mentioned_bot=True)


def telegram(text, chat="5", chat_type="private", user="5"):
    return IncomingMessage(text=text, platform="telegram", conversation_id=chat, user_id=user, chat_type=chat_type,
                           is_direct=chat_type == "private")


CUSTOMER_AUDIENCES = {
    "telegram private": lambda q: telegram(q),
    "telegram partner group": lambda q: telegram(q, chat="-100777", chat_type="supergroup", user="9"),
    "slack connect user in the support channel": lambda q: slack(q, channel="CSUPPORT", user_team="TEXTERNAL", shared=True, user="UEXT"),
    "own staff in the shared support channel": lambda q: slack(q, channel="CSUPPORT", shared=True),
}
UNKNOWN_AUDIENCES = {
    "another workspace": lambda q: slack(q, team="TOTHER", user="UO"),
    "slack connect user elsewhere": lambda q: slack(q, user_team="TEXTERNAL", channel="CSHARED", user="UEXT"),
    "our team, channel shared with another org": lambda q: slack(q, channel="CSHARED", shared=True),
    "telegram group": lambda q: telegram(q, chat="-100555", chat_type="group", user="8"),
}


def _settings(root, unknown="refuse"):
    path = root / f"scopes-{unknown}.yaml"
    path.write_text(SCOPES_YAML.format(unknown=unknown), encoding="utf-8")
    return make_settings(scopes_file=path, index_dir=root / "unused-index", kb_dir=root / "unused-kb",
                         answer_mode="compose", db_path=root / f"{unknown}.db")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """Both knowledge bases, indexed by the rebuild command's all-scopes path."""
    from core.retrieval.build import run_build

    root = tmp_path_factory.mktemp("scopes")
    write_kb(root / "hr_kb", HR_KB)
    write_kb(root / "shop_kb", SHOP_KB)
    args = argparse.Namespace(kb_dir=None, index_dir=None, scope=None, quiet=True)
    assert run_build(args, _settings(root)) == 0
    return root


@pytest.fixture(scope="module")
def assistant(root):
    from core.assistant import Assistant

    assistant = Assistant(_settings(root))
    for retriever in assistant.retrievers.values():  # compose mode: no generator to load
        retriever.warm_up()
    return assistant


def _sources(answer: Answer) -> set[str]:
    return {c.source for c in answer.citations + answer.related}


def _kb_of(source: str) -> str:
    name = source.rsplit("/", 1)[-1]
    return "hr" if name in HR_KB else "shop" if name in SHOP_KB else "?"


def test_the_build_made_one_index_per_scope(root):
    for name in ("support", "internal", "customers"):
        assert (root / "indexes" / name / "manifest.json").exists()
    import json

    internal = json.loads((root / "indexes/internal/manifest.json").read_text())
    assert internal["passages"] >= len(HR_KB) and internal["kb_dir"].endswith("hr_kb")


def test_each_scope_answers_its_own_questions(assistant):
    """The control: without it, "no leak" could just mean "never answers"."""
    own = [(slack(q), "hr") for q in HR_QUESTIONS] + [(telegram(q), "shop") for q in SHOP_QUESTIONS]
    answered = 0
    for message, kb in own:
        answer = assistant.answer(message)
        assert answer.scope == ("internal" if kb == "hr" else "customers")
        assert {_kb_of(s) for s in _sources(answer)} <= {kb}
        answered += not answer.refused
    assert answered >= 0.8 * len(own)


def test_no_answer_crosses_a_scope(assistant):
    """≥ 50 cross-scope questions: internal facts to customers, shop facts to staff; 0 leaks."""
    asked = leaks = 0
    for audience, make in CUSTOMER_AUDIENCES.items():
        for question in HR_QUESTIONS:
            answer = assistant.answer(make(question))
            asked += 1
            assert answer.scope in ("support", "customers"), audience
            wrong = {s for s in _sources(answer) if _kb_of(s) != "shop"}
            shown = f"{answer.text} {answer.contact or ''}"
            if wrong or any(m in shown for m in HR_MARKERS):
                leaks += 1
    for question in SHOP_QUESTIONS:
        answer = assistant.answer(slack(question, channel="CHR"))
        asked += 1
        assert answer.scope == "internal"
        if {s for s in _sources(answer) if _kb_of(s) != "hr"} or any(m in answer.text for m in SHOP_MARKERS):
            leaks += 1
    assert asked >= 50 and leaks == 0


def test_unknown_audiences_are_refused_politely(assistant):
    for audience, make in UNKNOWN_AUDIENCES.items():
        for question in HR_QUESTIONS[:4] + SHOP_QUESTIONS[:2] + ["talk to a person", "hi", ""]:
            answer = assistant.answer(make(question))
            assert answer.mode == "unscoped" and answer.scope is None, audience
            assert answer.refused and not answer.offers_person and not answer.silent
            assert "isn't set up" in answer.text
            assert not answer.citations and not answer.related and answer.contact is None
            assert not any(m in answer.text for m in HR_MARKERS + SHOP_MARKERS)
    assert "无法" in assistant.answer(UNKNOWN_AUDIENCES["telegram group"]("我的假期有几天？")).text


def test_unknown_audiences_can_get_nothing_at_all(root):
    from core.assistant import Assistant

    quiet = Assistant(_settings(root, unknown="ignore"))
    answer = quiet.answer(slack("How many vacation days do I get?", team="TOTHER"))
    assert answer.silent and answer.text == "" and answer.mode == "unscoped" and not answer.offers_person
    conversation = quiet.store.conversation("slack", "TOTHER:CGENERAL", "1.1")
    assert quiet.store.recent_turns(conversation, 5) == []  # nothing about them is kept either
    assert quiet.answer(telegram("How many vacation days do I get?")).scope == "customers"


async def test_a_silent_answer_streams_nothing(root):
    from core.assistant import Assistant

    quiet = Assistant(_settings(root, unknown="ignore"))
    events = [e async for e in quiet.stream(telegram("hello", chat="-100555", chat_type="group"))]
    assert len(events) == 1 and isinstance(events[0], Answer) and events[0].silent


def test_contact_details_come_from_the_askers_scope(assistant):
    staff = assistant.answer(slack("I want to talk to a person"))
    customer = assistant.answer(telegram("I want to talk to a person"))
    assert staff.handoff and "555 0100" in (staff.contact or "") and "shop.example" not in (staff.contact or "")
    assert customer.handoff and "shop.example" in (customer.contact or "") and "corp.internal" not in (customer.contact or "")
    # An adapter that names no scope gets no contact details at all, rather than someone else's.
    assert assistant.handoff_unavailable("en") == assistant.handoff_unavailable("en", None)
    assert "555" not in assistant.handoff_unavailable("en") and "shop.example" not in assistant.handoff_unavailable("en")
    assert "shop.example" in assistant.handoff_unavailable("en", telegram("help"))
    assert "corp.internal" in assistant.handoff_unavailable("en", "internal")


def test_spelling_and_unknown_names_are_per_scope(assistant):
    """The speller and the "names the KB never mentions" check use only the asker's index."""
    customers, internal = assistant.retrievers["customers"], assistant.retrievers["internal"]
    assert "globalprotect" not in customers.speller().vocabulary
    assert "globalprotect" in internal.speller().vocabulary
    answer = assistant.answer(telegram("How do I install GlobalProtect?"))
    assert answer.refused and not any(m in answer.text for m in HR_MARKERS)


def test_terminal_is_its_own_audience(assistant):
    answer = assistant.answer(IncomingMessage(text="How many vacation days do I get?"))
    assert answer.scope == "internal" and "27" in answer.text


def test_build_one_scope_and_report_a_broken_one(root, capsys):
    from core.retrieval.build import run_build

    settings = _settings(root)
    assert run_build(argparse.Namespace(kb_dir=None, index_dir=None, scope="internal", quiet=True), settings) == 0
    out = capsys.readouterr().out
    assert out.startswith("scope internal: Index already up to date") and "support" not in out
    broken = root / "broken.yaml"
    broken.write_text(SCOPES_YAML.format(unknown="refuse").replace("kb_dir: shop_kb", "kb_dir: missing_kb", 1), encoding="utf-8")
    code = run_build(argparse.Namespace(kb_dir=None, index_dir=None, scope=None, quiet=True),
                     settings.model_copy(update={"scopes_file": broken}))
    captured = capsys.readouterr()
    assert code == 2 and "error: scope support:" in captured.err
    assert "scope internal: Index already up to date" in captured.out and "scope customers:" in captured.out
