"""The terminal adapter and the ``askdesk`` command line."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from bots.cli import main
from bots.terminal.chat import chat
from core.config import get_settings
from tests.conftest import ROOT


@pytest.fixture()
def cli_env(monkeypatch, settings):
    """Point the CLI's settings at the session's sample index, with short generation."""
    monkeypatch.setenv("ASKDESK_INDEX_DIR", str(settings.index_dir))
    monkeypatch.setenv("ASKDESK_KB_DIR", str(settings.kb_dir))
    monkeypatch.setenv("ASKDESK_CACHE_DIR", str(settings.cache_dir))
    monkeypatch.setenv("ASKDESK_MAX_NEW_TOKENS", "16")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_ask_json_has_the_answer_shape(cli_env, capsys):
    assert main(["ask", "--json", "How long do I have to return an item?"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"text", "citations", "confidence", "refused", "mode"} <= set(data)
    assert data["refused"] is False and data["text"]
    citation = data["citations"][0]
    assert {"passage_id", "title", "source", "url", "snippet", "score"} <= set(citation)
    assert "return" in citation["url"]


def test_ask_json_refusal(cli_env, capsys):
    assert main(["ask", "--json", "What is the capital of Mars?"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["refused"] is True and data["citations"] == []


def test_ask_plain_lists_sources(cli_env, capsys):
    assert main(["ask", "Which countries do you ship to?"]) == 0
    out = capsys.readouterr().out
    assert "Sources:" in out and "https://help.northwindgoods.example/" in out


def test_index_build_on_missing_and_empty_folder_is_a_clear_error(cli_env, tmp_path, capsys):
    assert main(["index", "build", str(tmp_path / "missing"), "--index", str(tmp_path / "i")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["index", "build", str(tmp_path / "empty"), "--index", str(tmp_path / "i")]) == 2
    err = capsys.readouterr().err
    assert "nothing to index" in err and "Traceback" not in err


def test_missing_index_tells_how_to_build_it(cli_env, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("ASKDESK_INDEX_DIR", str(tmp_path / "none"))
    get_settings.cache_clear()
    assert main(["ask", "hello there, how do refunds work?"]) == 2
    assert "askdesk index build" in capsys.readouterr().err


def test_chat_streams_lists_sources_and_exits_on_eof(quick_assistant):
    out = io.StringIO()
    assert chat(quick_assistant, inp=io.StringIO("How do I reset my password?\n\n"), out=out) == 0
    text = out.getvalue()
    assert "askdesk>" in text and "Sources:" in text and "reset-your-password" in text


def test_chat_commands_are_never_sent_as_questions(quick_assistant):
    from bots.terminal.chat import COMMAND_HELP

    out = io.StringIO()
    script = "/help\n/new\n/quit\nHow do I reset my password?\n"
    assert chat(quick_assistant, inp=io.StringIO(script), out=out, conversation_id="cmd-test") == 0
    text = out.getvalue()
    assert COMMAND_HELP in text and "(new conversation)" in text
    assert "askdesk>" not in text  # nothing was answered, and the question after /quit was not read


def test_chat_reports_bad_input_and_continues(quick_assistant):
    out = io.StringIO()
    assert chat(quick_assistant, inp=io.StringIO("x" * 5000 + "\nWhat is the capital of Mars?\n"), out=out) == 0
    assert "too long" in out.getvalue() and "don't know" in out.getvalue()


def test_console_script_runs_as_a_process(settings, tmp_path):
    env = {**os.environ, "ASKDESK_INDEX_DIR": str(settings.index_dir), "ASKDESK_CACHE_DIR": str(settings.cache_dir),
           "ASKDESK_MAX_NEW_TOKENS": "8"}
    result = subprocess.run(
        [sys.executable, "-m", "bots.cli", "ask", "--json", "Do gift cards expire?"],
        cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["citations"]


def test_readme_lists_every_setting():
    from core.config import Settings

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [name for name in Settings.model_fields if f"`ASKDESK_{name.upper()}`" not in readme]
    assert not missing, f"README configuration table lacks {missing}"
