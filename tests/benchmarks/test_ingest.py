"""The ingest benchmark's build of the mixed help centre (benchmarks/ingest.py), without its eval.

The real crawl of the fixture site and the real build over every file, with the fake embedder
of ``kb list``'s tests in place of the model: 0 crashes, each broken file reported with its
expected reason, the site's traps reported as skipped URLs, the incremental second pass, and
every labelled question's source present in the index.
"""

from __future__ import annotations

import pytest

from benchmarks.ingest import IngestResult, ingest
from benchmarks.kb_fixtures import BAD_FILES, labelled_questions
from tests.bots.terminal.test_kb_list import FakeEmbedder
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> IngestResult:
    import core.retrieval.build as build

    root = tmp_path_factory.mktemp("ingest")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(build, "embedder_for", lambda settings, device: FakeEmbedder())
        return ingest(root, make_settings(), rate=500.0)


def test_no_stage_crashes(result):
    assert result.crashes == []
    assert result.pages > 0 and result.passages > 0


@pytest.mark.parametrize("path", sorted(BAD_FILES))
def test_each_broken_file_is_reported_with_its_reason(result, path):
    assert BAD_FILES[path].casefold() in result.skipped_files.get(path, "").casefold(), result.skipped_files.get(path)


def test_every_skip_has_a_reason_and_only_unusable_files_are_skipped(result):
    assert result.missing_reasons == {}
    assert all(reason.strip() for reason in result.skipped_files.values())
    assert all(reason.strip() for _, reason in result.skipped_urls)
    for path, reason in result.skipped_files.items():
        if path in BAD_FILES:
            continue
        if path.startswith("notion/"):  # the export's pictures: attachments, not text
            assert path.endswith(".png") and "attachment" in reason
        else:  # the site's home and topic pages only list articles
            assert path.startswith("web/") and path.endswith("index.html") and "only a list of links" in reason


def test_the_site_traps_are_reported_as_skipped_urls(result):
    reasons = dict(result.skipped_urls)
    printable = next(p for p in result.kb.site.pages if p.startswith("/print/"))
    old = next(iter(result.kb.site.redirects))
    assert reasons["/internal/drafts"] == "disallowed by robots.txt"
    assert reasons[printable].startswith("duplicate of ")
    assert reasons[old].startswith("redirects to ")
    assert reasons["/missing-page"] == "HTTP 404 (not found)"
    articles = set(result.kb.site.article_paths.values())
    assert not articles & set(reasons)  # every article page was crawled


def test_second_pass_is_incremental(result):
    assert result.recrawl_not_modified == result.pages == result.recrawl_unchanged
    assert result.rebuild_new == 0 and result.rebuild_up_to_date


def test_every_labelled_question_names_a_document_of_the_index(result, tmp_path):
    from core.retrieval.evaluation import document_keys, expected_names, read_questions, resolve_expected
    from core.retrieval.index import VectorIndex

    count = labelled_questions(result.kb.expected, result.base_url, tmp_path / "q.csv")
    questions = read_questions(tmp_path / "q.csv")
    assert count == len(questions) >= 30
    keys = document_keys(VectorIndex.load(result.index_dir).passages)
    for q in questions:
        names = expected_names(q.expected, keys)
        assert all(keys.get(n.casefold().rstrip("/")) for n in names), q
        assert len(resolve_expected(q.expected, keys)) == len(names), q  # one document per named source
