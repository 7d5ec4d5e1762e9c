"""The answer-quality grader (benchmarks/answer_quality.py) and its labelled data; no models load."""

from __future__ import annotations

import pytest

from benchmarks.answer_quality import (
    SETS,
    InScopeQuestion,
    Outcome,
    OutOfScopeQuestion,
    aggregate,
    contains,
    grade_in_scope,
    grade_out_of_scope,
    load_in_scope,
    load_out_of_scope,
    missing_facts,
    normalize,
    parse_facts,
    parse_sources,
)

RETURNS = InScopeQuestion(
    question="how long do I have to return an item",
    facts=parse_facts("30 days|30-day|thirty days;;original packaging"),
    sources=parse_sources("returns/return-window.md|faq.csv"),
)
CANADA = InScopeQuestion("whats the shipping cost to canada", parse_facts("$19.99"),
                         parse_sources("shipping/shipping-times-and-costs.md"))
OOS = OutOfScopeQuestion("What is the capital of Mars?")


# ---- parsing -----------------------------------------------------------------------------
def test_parse_facts_and_sources():
    assert parse_facts("30 days|30-day| thirty days ;;original packaging") == (
        ("30 days", "30-day", "thirty days"), ("original packaging",))
    assert parse_facts("a||b;;;;") == (("a", "b"),)
    assert parse_sources("returns/return-window.md| faq.csv |./x/y.md") == ("returns/return-window.md", "faq.csv", "x/y.md")


# ---- matching ----------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "spelling", "expected"), [
    ("Returns are accepted within 30 DAYS.", "30 days", True),  # case
    ("within 30\n  days", "30 days", True),  # whitespace
    ("It costs $5.99.", "$5.99", True),
    ("It costs 5.99 dollars", "$5.99", True),  # currency symbol ignored
    ("It costs $5.99", "5.99", True),
    ("It costs $15.99", "$5.99", False),  # whole numbers only
    ("within 150 days", "15 days", False),
    ("within 15 days", "15", True),
    ("item 150", "15", False),
    ("a 30-day window", "30-day", True),
    ("a 30 day window", "30-day", True),  # hyphen = space
    ("within 30 days", "30-day", False),  # "days" is not "day"
    ("Call +1 (800) 555-0199", "+1-800-555-0199", True),
    ("Mon-Fri 9 am - 6 pm ET", "9am-6pm", True),  # letters and digits split
    ("Press Super + L", "Super+L", True),
    ("Press Super+Lock", "Super+L", False),
    ("该链接在60分钟后失效", "60 分钟", True),  # Chinese: per character, spacing ignored
    ("该链接在 160 分钟后失效", "60 分钟", False),
    ("签收之日起 30 天内", "30天", True),
    ("ＦＵＬＬ－ＷＩＤＴＨ １５", "full-width 15", True),  # NFKC
    ("anything", ";", False),  # a spelling without words never matches
    ("", "30 days", False),
])
def test_contains(text, spelling, expected):
    assert contains(text, spelling) is expected


def test_normalize():
    assert normalize("Up to $5.99!") == "up to 5 99"
    assert normalize("9am–6pm") == "9 am 6 pm"
    assert normalize("退款5-10个工作日") == "退 款 5 10 个 工 作 日"


def test_alternative_spellings_and_missing_facts():
    assert missing_facts("You have thirty days; keep the original packaging.", RETURNS.facts) == []
    assert missing_facts("You have a 30-day window.", RETURNS.facts) == ["original packaging"]
    assert missing_facts("Sorry.", RETURNS.facts) == ["30 days", "original packaging"]


# ---- grading -----------------------------------------------------------------------------
def test_correct_answer():
    out = Outcome("Most items can be returned within 30 days if unused and in their original packaging. [1]",
                  sources=("returns/return-window.md",))
    g = grade_in_scope(RETURNS, out)
    assert (g.verdict, g.right_source, g.facts_ok) == ("correct", True, True)


def test_correct_from_an_alternative_source_among_several_citations():
    out = Outcome("30 days, original packaging", sources=("shipping/shipping-destinations.md", "faq.csv"))
    assert grade_in_scope(RETURNS, out).verdict == "correct"


def test_right_source_missing_fact_is_wrong_with_citation():
    out = Outcome("Returns are accepted within 30 days. [1]", sources=("returns/return-window.md",), mode="extractive")
    g = grade_in_scope(RETURNS, out)
    assert g.verdict == "wrong_with_citation"
    assert g.right_source and not g.facts_ok
    assert g.missing == ["original packaging"]
    assert "original packaging" in g.reason


def test_right_facts_wrong_source_is_wrong_with_citation():
    out = Outcome("International shipping is $19.99.", sources=("shipping/shipping-destinations.md",))
    g = grade_in_scope(CANADA, out)
    assert g.verdict == "wrong_with_citation"
    assert g.facts_ok and not g.right_source
    assert "expected shipping/shipping-times-and-costs.md" in g.reason


def test_answer_without_citation_is_not_correct():
    g = grade_in_scope(CANADA, Outcome("It is $19.99."))
    assert g.verdict == "uncited"


def test_refused_in_scope_is_refused_wrongly():
    refusal = Outcome("I don't know that from our help centre.", refused=True, mode="refusal")
    assert grade_in_scope(CANADA, refusal).verdict == "refused_wrongly"
    handoff = Outcome("Connecting you with a person.", handoff=True, mode="refusal")
    assert grade_in_scope(CANADA, handoff).verdict == "refused_wrongly"
    # Even a refusal that happens to contain the facts is not an answer.
    assert grade_in_scope(CANADA, Outcome("$19.99", sources=CANADA.sources, refused=True)).verdict == "refused_wrongly"


def test_out_of_scope():
    assert grade_out_of_scope(OOS, Outcome("I don't know.", refused=True, mode="refusal")).verdict == "oos_refused"
    assert grade_out_of_scope(OOS, Outcome("A person will help.", handoff=True)).verdict == "oos_refused"
    answered = grade_out_of_scope(OOS, Outcome("Mars has no capital [1]", sources=("faq.csv",)))
    assert answered.verdict == "oos_answered" and "faq.csv" in answered.reason


def test_pipeline_error():
    assert grade_in_scope(CANADA, Outcome("", error="RuntimeError: boom")).verdict == "error"
    assert grade_out_of_scope(OOS, Outcome("", error="RuntimeError: boom")).verdict == "error"


def _row(kind, grade, mode, first, total):
    return {"kind": kind, "verdict": grade.verdict, "right_source": grade.right_source, "facts_ok": grade.facts_ok,
            "mode": mode, "first_text_s": first, "total_s": total}


def test_aggregation_percentages():
    rows = [
        _row("in", grade_in_scope(CANADA, Outcome("$19.99 [1]", sources=CANADA.sources)), "generated", 1.0, 2.0),
        _row("in", grade_in_scope(CANADA, Outcome("$19.99 [1]", sources=CANADA.sources)), "extractive", 2.0, 3.0),
        _row("in", grade_in_scope(CANADA, Outcome("$5.99 [1]", sources=CANADA.sources)), "generated", 3.0, 4.0),
        _row("in", grade_in_scope(CANADA, Outcome("no", refused=True)), "refusal", 4.0, 4.0),
        _row("oos", grade_out_of_scope(OOS, Outcome("no", refused=True)), "refusal", 0.1, 0.1),
        _row("oos", grade_out_of_scope(OOS, Outcome("yes", sources=("faq.csv",))), "generated", 0.2, 0.5),
    ]
    s = aggregate(rows)
    assert (s["n_in_scope"], s["n_out_of_scope"]) == (4, 2)
    assert s["correct_pct"] == 50.0
    assert s["wrong_with_citation_pct"] == 25.0
    assert s["refused_wrongly_pct"] == 25.0
    assert s["cited_right_source_pct"] == 75.0
    assert s["facts_present_pct"] == 50.0
    assert s["oos_refused_pct"] == 50.0
    assert s["modes"] == {"extractive": 1, "generated": 3, "refusal": 2}
    assert s["verdicts"]["correct"] == 2 and s["verdicts"]["oos_answered"] == 1
    assert s["answer_p50_s"] in {2.0, 3.0} and s["answer_p95_s"] == 4.0


def test_aggregation_of_empty_parts():
    s = aggregate([])
    assert s["correct_pct"] is None and s["oos_refused_pct"] is None and s["answer_p50_s"] is None


# ---- the labelled data -------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SETS))
def test_labelled_data_parses_and_matches_its_knowledge_base(name):
    spec = SETS[name]
    assert spec.kb_dir.is_dir(), spec.kb_dir
    inside = load_in_scope(spec.in_scope)
    outside = load_out_of_scope(spec.out_of_scope)
    assert len(inside) >= 30 and len(outside) >= 15
    assert len({q.question for q in inside}) == len(inside), "duplicate in-scope question"
    assert len({q.question for q in outside}) == len(outside), "duplicate out-of-scope question"
    assert not {q.question for q in inside} & {q.question for q in outside}
    problems = []
    for q in inside:
        assert q.language in {"en", "zh"}, q
        for source in q.sources:
            if not (spec.kb_dir / source).is_file():
                problems.append(f"{q.question!r}: source {source} does not exist in {spec.kb_dir}")
        primary = spec.kb_dir / q.sources[0]
        if not primary.is_file():
            continue
        text = primary.read_text(encoding="utf-8")
        for fact in q.facts:
            if not normalize(fact[0]):
                problems.append(f"{q.question!r}: fact {fact[0]!r} has no letters or digits")
            elif not contains(text, fact[0]):
                problems.append(f"{q.question!r}: fact {fact[0]!r} is not in {q.sources[0]}")
    assert not problems, "\n".join(problems)


def test_sample_set_sizes():
    inside = load_in_scope(SETS["sample"].in_scope)
    outside = load_out_of_scope(SETS["sample"].out_of_scope)
    assert len(inside) >= 60 and sum(q.language == "zh" for q in inside) >= 10
    assert len(outside) >= 30 and any(q.language == "zh" for q in outside)
    # Every article of the sample knowledge base is the expected source of some question.
    kb = SETS["sample"].kb_dir
    articles = {p.relative_to(kb).as_posix() for p in kb.rglob("*") if p.suffix in {".md", ".csv"}}
    covered = {s for q in inside for s in q.sources}
    assert articles <= covered, sorted(articles - covered)
