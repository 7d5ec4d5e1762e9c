"""The scopes file: parsing, clear errors that name file, scope and field, and audience matching."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.messages import IncomingMessage
from core.scopes import IMPLICIT_SCOPE, ScopesConfigError, load_scopes, parse_scopes
from tests.conftest import make_settings

CONFIG = """
unknown: ignore
default: public
scopes:
  - name: support-channel
    kb_dir: kb/shop
    index_dir: idx/support
    audiences:
      - platform: slack
        channels: [CSUPPORT]
        external: true
  - name: internal
    kb_dir: kb/hr
    index_dir: idx/internal
    audiences:
      - platform: slack
        teams: [TINTERNAL]
      - platform: slack
        enterprises: [EORG]
  - name: vip
    kb_dir: kb/vip
    index_dir: /abs/idx/vip
    audiences:
      - platform: telegram
        chats: [-100123, 42]
      - platform: telegram
        chat_types: [private]
        users: [7]
  - name: public
    kb_dir: kb/shop
    index_dir: idx/public
"""


def _slack(team="TINTERNAL", channel="CGENERAL", user_team=None, shared=False, enterprise=None, user="U1"):
    return IncomingMessage(text="q", platform="slack", team_id=team, channel_id=channel, user_id=user,
                           user_team_id=user_team or team, shared_channel=shared, enterprise_id=enterprise,
                           conversation_id=f"{team}:{channel}")


def _telegram(chat="5", chat_type="private", user="5"):
    return IncomingMessage(text="q", platform="telegram", conversation_id=chat, chat_type=chat_type, user_id=user)


@pytest.fixture()
def scopes(tmp_path):
    return parse_scopes(CONFIG, tmp_path / "scopes.yaml").config


def test_paths_are_relative_to_the_file_and_ids_are_strings(scopes, tmp_path):
    internal = scopes.get("internal")
    assert internal.kb_dir == tmp_path / "kb/hr" and internal.index_dir == tmp_path / "idx/internal"
    assert scopes.get("vip").index_dir == Path("/abs/idx/vip")
    assert scopes.get("vip").audiences[0].chats == ["-100123", "42"]
    assert scopes.unknown == "ignore" and scopes.default == "public"


@pytest.mark.parametrize("message, expected", [
    (_slack(), "internal"),
    (_slack(channel="CSUPPORT"), "support-channel"),  # first match wins
    (_slack(user_team="TEXTERNAL", channel="CSUPPORT", shared=True), "support-channel"),
    (_slack(user_team="TEXTERNAL"), "public"),  # another organisation's user never gets the internal scope
    (_slack(shared=True), "public"),  # a channel shared with other organisations is not internal
    (_slack(team="TOTHER"), "public"),
    (_slack(team="TOTHER", enterprise="EORG"), "internal"),
    (_telegram(chat="-100123", chat_type="supergroup"), "vip"),
    (_telegram(chat="42"), "vip"),
    (_telegram(user="7"), "vip"),
    (_telegram(chat="-100999", chat_type="group", user="7"), "public"),  # user 7, but not in private
    (_telegram(), "public"),
    (IncomingMessage(text="q"), "public"),
])
def test_first_matching_scope_else_the_default(scopes, message, expected):
    assert scopes.resolve(message).name == expected


def test_without_a_default_unknown_audiences_have_no_scope(tmp_path):
    config = parse_scopes(CONFIG.replace("default: public", "default: null"), tmp_path / "s.yaml").config
    assert config.resolve(_slack(user_team="TEXTERNAL")) is None
    assert config.resolve(_telegram()) is None
    assert config.resolve(_slack()).name == "internal"


def test_no_scopes_file_is_one_implicit_scope_for_everyone(tmp_path):
    settings = make_settings(index_dir=tmp_path / "index")
    scope_map = load_scopes(settings)
    assert scope_map.implicit and scope_map.config.names == [IMPLICIT_SCOPE]
    scope = scope_map.config.scopes[0]
    assert scope.kb_dir == Path(settings.kb_dir) and scope.index_dir == tmp_path / "index"
    for message in (_slack(user_team="TEXTERNAL"), _telegram(chat_type="group"), IncomingMessage(text="q")):
        assert scope_map.config.resolve(message) is scope


def test_settings_name_the_file(tmp_path):
    path = tmp_path / "scopes.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    scope_map = load_scopes(make_settings(scopes_file=path))
    assert scope_map.source == path and scope_map.config.names == ["support-channel", "internal", "vip", "public"]


@pytest.mark.parametrize("text, expected", [
    ("scopes:\n  - name: hr\n    index_dir: i\n", ["scope 'hr'", "field kb_dir", "Field required"]),
    ("scopes:\n  - name: hr\n    kb_dir: k\n    index_dir: i\n    audiences:\n      - platform: slack\n        chanels: [C1]\n",
     ["scope 'hr'", "field audiences[0].chanels", "Extra inputs"]),
    ("scopes:\n  - name: hr\n    kb_dir: k\n    index_dir: i\n    audiences:\n      - platform: telegram\n        teams: [T1]\n",
     ["scope 'hr'", "audiences[0]", "teams cannot be used with platform telegram"]),
    ("scopes:\n  - name: hr\n    kb_dir: k\n    index_dir: i\n    audiences:\n      - platform: whatsapp\n",
     ["scope 'hr'", "field audiences[0].platform", "'slack', 'telegram' or 'terminal'"]),
    ("scopes:\n  - name: hr\n    kb_dir: k\n    index_dir: i\n    audiences:\n      - platform: telegram\n        chat_types: [channnel]\n",
     ["scope 'hr'", "chat_types[0]"]),
    ("scopes:\n  - kb_dir: k\n    index_dir: i\n", ["scope #1", "field name"]),
    ("scopes:\n  - name: 'bad name!'\n    kb_dir: k\n    index_dir: i\n", ["scope 'bad name!'", "field name", "letters"]),
    ("scopes:\n  - {name: a, kb_dir: k, index_dir: i}\n  - {name: a, kb_dir: k2, index_dir: j}\n", ["unique", "a"]),
    ("scopes:\n  - {name: a, kb_dir: k, index_dir: i}\n  - {name: b, kb_dir: k2, index_dir: ./i}\n", ["own index_dir"]),
    ("default: nope\nscopes:\n  - {name: a, kb_dir: k, index_dir: i}\n", ["default 'nope' is not one of the scopes (a)"]),
    ("unknown: shrug\nscopes:\n  - {name: a, kb_dir: k, index_dir: i}\n", ["field unknown", "'refuse' or 'ignore'"]),
    ("scopes: []\n", ["field scopes", "at least 1"]),
    ("- just a list\n", ["mapping with a 'scopes' list"]),
    ("scopes: [unclosed\n", ["not valid YAML"]),
])
def test_invalid_files_name_the_file_the_scope_and_the_field(tmp_path, text, expected):
    path = tmp_path / "scopes.yaml"
    with pytest.raises(ScopesConfigError) as caught:
        parse_scopes(text, path)
    message = str(caught.value)
    assert message.startswith(str(path))
    for part in expected:
        assert part in message, message


def test_a_missing_file_says_which_setting(tmp_path):
    with pytest.raises(ScopesConfigError, match="ASKDESK_SCOPES_FILE") as caught:
        load_scopes(make_settings(scopes_file=tmp_path / "absent.yaml"))
    assert "absent.yaml" in str(caught.value)


def test_unknown_scope_name_lists_the_scopes(scopes):
    with pytest.raises(ScopesConfigError, match="internal"):
        scopes.get("hr")


def test_the_example_file_is_valid():
    root = Path(__file__).resolve().parents[2]
    example = root / "examples" / "scopes.yaml"
    config = parse_scopes(example.read_text(encoding="utf-8"), example).config
    assert len(config.scopes) >= 2
