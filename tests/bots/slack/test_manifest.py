"""The install kit: the manifest asks for exactly the scopes and events the adapter uses."""

from __future__ import annotations

from pathlib import Path

import yaml

import bots.slack

MANIFEST = Path(bots.slack.__file__).with_name("manifest.yml")


def test_manifest_scopes_events_and_command():
    manifest = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == sorted([
        "app_mentions:read", "chat:write", "im:history", "im:read", "reactions:write",
        "channels:history", "groups:history", "commands", "users:read",
        "usergroups:read",  # SLACK_SUPPORT_AGENT_GROUP: the members of the support agents' group
    ])
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == [
        "app_mention", "message.im", "message.channels", "message.groups",
    ]
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == ["/ask", "/askdesk"]
    assert manifest["settings"]["interactivity"]["is_enabled"] is True  # the buttons
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True  # DMs need the Messages tab
