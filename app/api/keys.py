"""API keys scoped to knowledge bases.

A keys file (TOML, `OPENCITE_API__KEYS_FILE`) lists the keys; each has a name (the only thing
logs and metrics ever show), the secret, and the KBs it may read:

    [[keys]]
    name = "support-bot"
    key = "sk-support-..."
    kbs = ["docs", "default"]      # or ["*"] for every KB

`OPENCITE_API__API_KEY` stays as one key named `api_key` that reads every KB. With neither set
the API is open. Secrets are compared in constant time, every configured key checked each time.
"""

from __future__ import annotations

import hashlib
import hmac
import tomllib
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from opencite.store.kb import KnowledgeBaseError, validate_name

ALL_KBS = "*"


class KeysFileError(ValueError):
    """The keys file is missing, not TOML or not the expected shape (the message says where and how to fix)."""


class _KeyEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    key: SecretStr
    kbs: list[str] = Field(min_length=1)

    @field_validator("key")
    @classmethod
    def _long_enough(cls, v: SecretStr) -> SecretStr:
        if len(v.get_secret_value()) < 8:
            raise ValueError("a key must be at least 8 characters")
        return v

    @field_validator("kbs")
    @classmethod
    def _kb_names(cls, v: list[str]) -> list[str]:
        for name in v:
            if name != ALL_KBS:
                try:
                    validate_name(name)
                except KnowledgeBaseError as exc:
                    raise ValueError(str(exc)) from None
        return v


class _KeysFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keys: list[_KeyEntry] = Field(min_length=1)


@dataclass(frozen=True)
class ApiKey:
    name: str
    kbs: frozenset[str]

    def allows(self, kb: str) -> bool:
        return ALL_KBS in self.kbs or kb in self.kbs


# What an open API (no keys configured) acts as.
OPEN_ACCESS = ApiKey("anonymous", frozenset({ALL_KBS}))


class Keyring:
    def __init__(self, entries: list[tuple[str, ApiKey]]):
        # Digests of equal length: compare_digest's time then depends on neither key's length.
        self._entries = [(hashlib.sha256(secret.encode()).digest(), key) for secret, key in entries]

    def __bool__(self) -> bool:
        return bool(self._entries)

    def match(self, token: str) -> ApiKey | None:
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for stored, key in self._entries:  # no early exit: the time does not tell which key matched
            if hmac.compare_digest(digest, stored):
                found = key
        return found


def load_keyring(keys_file: Path | None, api_key: str | None) -> Keyring:
    entries: list[tuple[str, ApiKey]] = []
    if api_key:
        entries.append((api_key, ApiKey("api_key", frozenset({ALL_KBS}))))
    if keys_file is not None:
        for entry in _read(Path(keys_file)).keys:
            entries.append((entry.key.get_secret_value(), ApiKey(entry.name, frozenset(entry.kbs))))
    secrets = [s for s, _ in entries]
    if len(set(secrets)) != len(secrets):
        raise KeysFileError(f"The API keys file {keys_file}: the same key is listed twice (or equals OPENCITE_API__API_KEY). Fix: give every entry its own key.")
    names = [k.name for _, k in entries]
    if len(set(names)) != len(names):
        raise KeysFileError(f"The API keys file {keys_file}: two keys share a name. Fix: give every entry its own name.")
    return Keyring(entries)


def _read(path: Path) -> _KeysFile:
    fix = ("Fix: a TOML file of [[keys]] tables, each with name = \"...\", key = \"...\" "
           "(8+ characters) and kbs = [\"kb\", ...] or [\"*\"] (see README 'API keys').")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise KeysFileError(f"The API keys file {path} cannot be read ({exc.strerror}). "
                            "Fix: create it or unset OPENCITE_API__KEYS_FILE.") from None
    except tomllib.TOMLDecodeError as exc:
        raise KeysFileError(f"The API keys file {path} is not valid TOML ({exc}). {fix}") from None
    try:
        return _KeysFile.model_validate(data)
    except ValidationError as exc:
        # Never echo input values: they may be keys.
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors())
        raise KeysFileError(f"The API keys file {path} is not in the expected shape ({problems}). {fix}") from None
