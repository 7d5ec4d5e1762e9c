"""Slack payloads → the audience fields a scope is chosen by (workspace, org, channel, guest's team)."""

from __future__ import annotations

from bots.slack.events import BotIdentity, command_message, incoming_message, question_text
from core.scopes import parse_scopes

IDENTITY = BotIdentity(user_id="UBOT", bot_id="BBOT", team_id="TINTERNAL")

# The envelope of an Events API delivery in a Slack Connect channel: the event's `team` and
# `user_team` are the guest's, the installation (authorizations) is ours, the envelope's team_id
# may be the channel owner's.
CONNECT_BODY = {
    "type": "event_callback",
    "team_id": "TOWNER",
    "enterprise_id": None,
    "event_id": "Ev1",
    "is_ext_shared_channel": True,
    "authorizations": [{"enterprise_id": None, "team_id": "TINTERNAL", "user_id": "UBOT", "is_bot": True}],
    "event": {
        "type": "app_mention", "user": "UEXT", "text": "<@UBOT> how many vacation days?", "ts": "1700000000.000100",
        "team": "TEXTERNAL", "user_team": "TEXTERNAL", "source_team": "TEXTERNAL", "channel": "CSHARED",
    },
}
INTERNAL_BODY = {
    "type": "event_callback", "team_id": "TINTERNAL", "enterprise_id": "EORG", "event_id": "Ev2",
    "is_ext_shared_channel": False,
    "authorizations": [{"enterprise_id": "EORG", "team_id": "TINTERNAL", "user_id": "UBOT", "is_bot": True}],
    "event": {"type": "app_mention", "user": "U1", "text": "<@UBOT> vacation days?", "ts": "1700000000.000200",
              "team": "TINTERNAL", "channel": "CGENERAL"},
}
SCOPES = parse_scopes("""
scopes:
  - name: internal
    kb_dir: hr
    index_dir: idx/hr
    audiences:
      - {platform: slack, teams: [TINTERNAL]}
  - name: public
    kb_dir: shop
    index_dir: idx/shop
    audiences:
      - {platform: slack, external: true}
""", __import__("pathlib").Path("/tmp/scopes.yaml")).config


def _message(body):
    event = body["event"]
    return incoming_message(event, question_text(event["text"], IDENTITY), direct=False, body=body)


def test_a_slack_connect_guest_is_external_and_never_internal():
    message = _message(CONNECT_BODY)
    assert message.team_id == "TINTERNAL" and message.user_team_id == "TEXTERNAL"
    assert message.is_external and message.shared_channel and message.channel_id == "CSHARED"
    assert SCOPES.resolve(message).name == "public"


def test_our_own_user_in_our_workspace_gets_the_internal_scope():
    message = _message(INTERNAL_BODY)
    assert (message.team_id, message.enterprise_id, message.user_team_id) == ("TINTERNAL", "EORG", "TINTERNAL")
    assert not message.is_external and not message.shared_channel
    assert SCOPES.resolve(message).name == "internal"


def test_our_own_user_in_a_shared_channel_is_not_internal():
    """Everything posted in a shared channel is read by the other organisation too."""
    body = {**CONNECT_BODY, "event": {**INTERNAL_BODY["event"], "channel": "CSHARED"}}
    message = _message(body)
    assert not message.is_external and message.shared_channel
    assert SCOPES.resolve(message).name == "public"


def test_without_the_envelope_the_events_team_stands_in():
    event = {**CONNECT_BODY["event"], "team": "TINTERNAL"}
    message = incoming_message(event, "q", direct=False)
    assert message.team_id == "TINTERNAL" and message.is_external


def test_slash_commands_carry_the_workspace_and_channel():
    message = command_message({"team_id": "TINTERNAL", "enterprise_id": "EORG", "channel_id": "C1",
                               "user_id": "U1", "text": "vacation days", "channel_name": "general"})
    assert (message.team_id, message.enterprise_id, message.channel_id) == ("TINTERNAL", "EORG", "C1")
    assert not message.is_external and SCOPES.resolve(message).name == "internal"
