"""Conversations of the web chat kept across reloads: a per-browser history list.

Each browser gets a random id kept in its localStorage and mirrored in the URL (`?b=<id>&c=<chat>`),
so a reload (same URL) finds its conversation and a new tab of the same browser finds its history
list. Behind trusted-header auth the list belongs to the user instead of the browser. Chats are
JSON files under `<data_dir>/runtime/chats/<owner>/<chat>.json`, written whole (temp + rename).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import datetime, timezone
from pathlib import Path

_ID = re.compile(r"[0-9a-f]{16,64}")
STORAGE_KEY = "opencite-browser"

# Runs in a same-origin component iframe: adopt this browser's id (reload to it when the URL shows
# another one, e.g. a copied link), or remember the one the URL shows. The iframe's sandbox forbids
# navigating the page, so the reload runs as a script of the page itself.
BOOTSTRAP_JS = """<script>
const p = window.parent, key = %(key)s, shown = %(shown)s;
try {
  const mine = p.localStorage.getItem(key);
  if (!mine) { p.localStorage.setItem(key, shown); }
  else if (mine !== shown) {
    const q = new URLSearchParams(p.location.search); q.set("b", mine); q.delete("c");
    const s = p.document.createElement("script");
    s.textContent = "location.replace(" + JSON.stringify(p.location.pathname + "?" + q.toString()) + ")";
    p.document.head.appendChild(s);
  }
} catch (e) { /* storage blocked: the URL alone keeps the conversation */ }
</script>"""


def new_id() -> str:
    return uuid.uuid4().hex


def valid_id(value: str | None) -> bool:
    return bool(value) and bool(_ID.fullmatch(value))


def owner_of(browser_id: str, user: str | None) -> str:
    return "user-" + hashlib.sha256(user.encode()).hexdigest()[:32] if user else browser_id


class ChatStore:
    def __init__(self, root: Path, owner: str):
        if not (valid_id(owner) or (owner.startswith("user-") and valid_id(owner[5:]))):
            raise ValueError(f"bad chat owner id {owner!r}")
        self.dir = Path(root) / owner

    def _path(self, chat_id: str) -> Path:
        if not valid_id(chat_id):
            raise ValueError(f"bad chat id {chat_id!r}")
        return self.dir / f"{chat_id}.json"

    def load(self, chat_id: str) -> dict | None:
        try:
            return json.loads(self._path(chat_id).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def save(self, chat_id: str, messages: list[dict], kb: str) -> None:
        if not messages:
            return
        first = next((m["content"] for m in messages if m["role"] == "user"), "")
        data = {"id": chat_id, "title": " ".join(first.split())[:80], "kb": kb, "messages": messages,
                "updated": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self._path(chat_id)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)

    def list(self, limit: int = 30) -> list[dict]:
        """The owner's chats, most recent first: id, title, kb, updated."""
        chats = []
        for path in self.dir.glob("*.json") if self.dir.is_dir() else ():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            chats.append({k: data.get(k) for k in ("id", "title", "kb", "updated")})
        return sorted(chats, key=lambda c: c["updated"] or "", reverse=True)[:limit]


def bootstrap_script(browser_id: str) -> str:
    return BOOTSTRAP_JS % {"key": json.dumps(STORAGE_KEY), "shown": json.dumps(browser_id)}
