"""API keys and their scopes.

Scopes, each including the ones before it: ``read`` (search, ask, embed, read documents), ``write``
(put and delete documents by key), ``admin`` (everything).

Keys come from ``BERTSEARCH_API_KEYS`` (``key1:admin,key2``; ``read`` when no scope is given)
and from a keys file holding only SHA-256 hashes (``sha256:<hex> [scope]`` a line, ``#`` comments).
Only the hashes are kept in memory. A presented key is hashed and compared with every stored hash
in constant time, so neither the answer nor its timing tells how close a guess came.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

from bertsearch.indexer.common.errors import ConfigError
from bertsearch.indexer.common.settings import Settings, reveal, split_list

READ = "read"
WRITE = "write"
ADMIN = "admin"
SCOPES = (READ, WRITE, ADMIN)  # each includes the ones before it
# A key shorter than this is refused at start-up: it could be guessed over the network.
MIN_KEY_CHARS = 16


def hash_key(key: str) -> str:
    """The line a keys file holds for ``key`` (without its scope): ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A new random key (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def grants(scope: str, needed: str) -> bool:
    """Whether a key of ``scope`` may do what needs ``needed`` (admin may do everything, write also read)."""
    return scope in SCOPES and needed in SCOPES and SCOPES.index(scope) >= SCOPES.index(needed)


@dataclass(frozen=True)
class KeyRing:
    """The server's keys, as (SHA-256 digest, scope) pairs. Empty: authentication is off."""

    keys: tuple[tuple[bytes, str], ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        """The keys of ``BERTSEARCH_API_KEYS`` and of the keys file.

        Raises:
            ConfigError: A key is too short, a scope is unknown, or the keys file cannot be read.
        """
        keys: list[tuple[bytes, str]] = []
        if settings.api_keys is not None:
            for n, item in enumerate(split_list(reveal(settings.api_keys)), 1):
                key, scope = _split_scope(item, f"key {n} of BERTSEARCH_API_KEYS")
                if len(key) < MIN_KEY_CHARS:
                    raise ConfigError(f"key {n} of BERTSEARCH_API_KEYS is shorter than {MIN_KEY_CHARS} "
                                      "characters; `bertsearch key` makes a strong one")
                keys.append((hashlib.sha256(key.encode("utf-8")).digest(), scope))
        if settings.api_keys_file is not None:
            keys.extend(_read_keys_file(Path(settings.api_keys_file)))
        return cls(tuple(keys))

    def scope_of(self, presented: str) -> str | None:
        """The scope of the presented key, or ``None`` when it is not a key of this server."""
        digest = hashlib.sha256(presented.encode("utf-8")).digest()
        found: str | None = None
        for stored, scope in self.keys:  # no early exit: every key is compared
            if hmac.compare_digest(stored, digest) and found is None:
                found = scope
        return found


def _split_scope(item: str, where: str) -> tuple[str, str]:
    key, sep, scope = item.rpartition(":")
    if not sep:
        return item, READ
    if scope not in SCOPES:
        raise ConfigError(f"{where} has the unknown scope {scope!r}; the scopes are {', '.join(SCOPES)}")
    return key, scope


def _read_keys_file(path: Path) -> list[tuple[bytes, str]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the API keys file {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    keys = []
    for n, line in enumerate(lines, 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        digest = parts[0]
        scope = parts[1] if len(parts) > 1 else READ
        where = f"{path}, line {n}"
        if not digest.startswith("sha256:") or len(parts) > 2:
            raise ConfigError(f"{where}: expected `sha256:<64 hex digits> [scope]` (`bertsearch key` makes one)")
        try:
            raw = bytes.fromhex(digest[len("sha256:"):])
        except ValueError:
            raw = b""
        if len(raw) != 32:
            raise ConfigError(f"{where}: the hash is not 64 hex digits")
        if scope not in SCOPES:
            raise ConfigError(f"{where}: unknown scope {scope!r}; the scopes are {', '.join(SCOPES)}")
        keys.append((raw, scope))
    return keys
