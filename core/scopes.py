"""Scopes: which audience (platform, Slack team, channel, Telegram chat) is answered from which KB.

An internal HR/IT knowledge base must never be answered to Telegram customers or to people of
another organisation in a Slack Connect channel, so every message is mapped to exactly one
scope, or to none, before anything reads an index. Each scope has its own knowledge base folder
and its own index; nothing (passages, spelling vocabulary, contact details, learned Q&A, which
live in the KB folder) is shared between scopes.

The map is a small YAML file named by ``ASKDESK_SCOPES_FILE`` (docs/scopes.md, examples/scopes.yaml).
Without one there is a single implicit scope from ``ASKDESK_KB_DIR`` / ``ASKDESK_INDEX_DIR`` that
answers everyone, exactly as before scopes existed.

Matching: scopes are tried in file order and the first one with a matching audience rule wins;
then ``default`` (if set); otherwise the message is *unknown* and gets ``unknown: refuse`` (a
polite refusal) or ``unknown: ignore`` (nothing at all).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.errors import ConfigError
from core.messages import IncomingMessage

IMPLICIT_SCOPE = "default"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ChatType = Literal["private", "group", "supergroup", "channel"]


class ScopesConfigError(ConfigError):
    """The scopes file cannot be used; the message names the file, the scope and the field."""


def _ids(value: Any) -> Any:
    """Ids may be written as numbers in YAML (Telegram chat ids): keep them as strings."""
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return value


class Audience(BaseModel):
    """One rule: every list that is given must contain the message's value (empty = any).

    ``external`` lets Slack users of other organisations (Slack Connect) match, and messages in
    channels shared with other organisations (everything posted there is seen by them); by
    default neither does, so an internal scope stays internal.
    """

    model_config = ConfigDict(extra="forbid")

    platform: Literal["slack", "telegram", "terminal"]
    teams: list[str] = Field(default_factory=list, description="Slack workspace (team) ids, T…")
    enterprises: list[str] = Field(default_factory=list, description="Slack Enterprise Grid org ids, E…")
    channels: list[str] = Field(default_factory=list, description="Slack channel ids (C…, G…, D…)")
    chats: list[str] = Field(default_factory=list, description="Telegram chat ids (negative for groups)")
    chat_types: list[ChatType] = Field(default_factory=list, description="Telegram chat kinds")
    users: list[str] = Field(default_factory=list, description="allowlist of user ids on this platform")
    external: bool = Field(False, description="Slack: also match users of other organisations and shared channels")

    _normalise = field_validator("teams", "enterprises", "channels", "chats", "users", mode="before")(_ids)

    @model_validator(mode="after")
    def _fields_fit_platform(self) -> "Audience":
        slack_only = {"teams": self.teams, "enterprises": self.enterprises, "channels": self.channels}
        telegram_only = {"chats": self.chats, "chat_types": self.chat_types}
        wrong = [k for k, v in (telegram_only if self.platform == "slack" else slack_only).items() if v]
        if self.platform == "terminal":
            wrong += [k for k, v in telegram_only.items() if v]
        if wrong:
            raise ValueError(f"{', '.join(wrong)} cannot be used with platform {self.platform}")
        return self

    def matches(self, message: IncomingMessage) -> bool:
        if message.platform != self.platform:
            return False
        if self.users and (message.user_id or "") not in self.users:
            return False
        if self.platform == "slack":
            return self._matches_slack(message)
        if self.platform == "telegram":
            if self.chats and message.conversation_id not in self.chats:
                return False
            return not self.chat_types or (message.chat_type or "") in self.chat_types
        return True

    def _matches_slack(self, message: IncomingMessage) -> bool:
        home = message.user_team_id or message.team_id
        outsider = message.is_external or message.shared_channel
        if outsider and not self.external:
            return False
        if self.teams and (home or "") not in self.teams:
            return False  # an external user is matched by *their* team, never the host's
        if self.enterprises and (message.enterprise_id or "") not in self.enterprises:
            return False
        return not self.channels or (message.channel_id or "") in self.channels


class Scope(BaseModel):
    """One knowledge base, its index, and who may be answered from it."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kb_dir: Path
    index_dir: Path
    description: str = ""
    audiences: list[Audience] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use letters, digits, '-', '_' or '.' (up to 64), starting with a letter or digit")
        return value

    def admits(self, message: IncomingMessage) -> bool:
        return any(rule.matches(message) for rule in self.audiences)


class ScopesConfig(BaseModel):
    """The whole map: scopes in matching order, the fallback, and what unknown audiences get."""

    model_config = ConfigDict(extra="forbid")

    scopes: list[Scope] = Field(min_length=1)
    default: str | None = None
    unknown: Literal["refuse", "ignore"] = "refuse"

    @model_validator(mode="after")
    def _consistent(self) -> "ScopesConfig":
        names = [s.name for s in self.scopes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"scope names must be unique; repeated: {', '.join(duplicates)}")
        folders = [s.index_dir.absolute() for s in self.scopes]
        shared = sorted({str(f) for f in folders if folders.count(f) > 1})
        if shared:
            raise ValueError(f"each scope needs its own index_dir; shared: {', '.join(shared)}")
        if self.default is not None and self.default not in names:
            raise ValueError(f"default {self.default!r} is not one of the scopes ({', '.join(names)})")
        return self

    def get(self, name: str) -> Scope:
        for scope in self.scopes:
            if scope.name == name:
                return scope
        raise ScopesConfigError(f"No scope named {name!r}; the scopes are: {', '.join(self.names)}.")

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.scopes]

    def resolve(self, message: IncomingMessage) -> Scope | None:
        """The scope that answers ``message``: first matching rule, else the default, else None."""
        for scope in self.scopes:
            if scope.admits(message):
                return scope
        return self.get(self.default) if self.default is not None else None


@dataclass(frozen=True, slots=True)
class ScopeMap:
    """The loaded configuration and where it came from (``None``: the implicit single scope)."""

    config: ScopesConfig
    source: Path | None = None

    @property
    def implicit(self) -> bool:
        return self.source is None


def implicit_scopes(settings: Any) -> ScopeMap:
    """Today's behaviour: one scope from ``kb_dir``/``index_dir`` that answers every audience."""
    scope = Scope(name=IMPLICIT_SCOPE, kb_dir=Path(settings.kb_dir), index_dir=Path(settings.index_dir))
    return ScopeMap(ScopesConfig(scopes=[scope], default=IMPLICIT_SCOPE))


def _where(loc: tuple[Any, ...], raw: Any) -> str:
    """``scope 'hr', audiences[0].teams`` for a pydantic error location."""
    parts: list[str] = []
    scope = ""
    items = list(loc)
    if len(items) >= 2 and items[0] == "scopes" and isinstance(items[1], int):
        index = items[1]
        name = None
        if isinstance(raw, dict) and isinstance(raw.get("scopes"), list) and index < len(raw["scopes"]):
            entry = raw["scopes"][index]
            name = entry.get("name") if isinstance(entry, dict) else None
        scope = f"scope {name!r}" if name else f"scope #{index + 1}"
        items = items[2:]
    for item in items:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    field = "".join(parts)
    return ", ".join(p for p in (scope, f"field {field}" if field else "") if p) or "top level"


def parse_scopes(text: str, source: Path) -> ScopeMap:
    """Parse and validate the YAML text of a scopes file; paths are relative to its folder."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScopesConfigError(f"{source}: not valid YAML ({exc}).") from None
    if not isinstance(raw, dict):
        raise ScopesConfigError(f"{source}: expected a mapping with a 'scopes' list at the top level.")
    try:
        config = ScopesConfig.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{_where(e['loc'], raw)}: {e['msg']}" for e in exc.errors()]
        raise ScopesConfigError(f"{source}: invalid scopes file: " + "; ".join(lines)) from None
    base = source.parent
    for scope in config.scopes:
        scope.kb_dir = scope.kb_dir if scope.kb_dir.is_absolute() else base / scope.kb_dir
        scope.index_dir = scope.index_dir if scope.index_dir.is_absolute() else base / scope.index_dir
    try:  # relative paths resolved: folders may now coincide
        ScopesConfig.model_validate(config.model_dump())
    except ValidationError as exc:
        raise ScopesConfigError(f"{source}: invalid scopes file: " + "; ".join(e["msg"] for e in exc.errors())) from None
    return ScopeMap(config, source)


def load_scopes(settings: Any) -> ScopeMap:
    """The scopes of ``settings.scopes_file``, or the implicit single scope without one."""
    path = getattr(settings, "scopes_file", None)
    if not path:
        return implicit_scopes(settings)
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScopesConfigError(
            f"Cannot read the scopes file {path} ({exc.strerror or exc}). Check ASKDESK_SCOPES_FILE."
        ) from None
    return parse_scopes(text, path)
