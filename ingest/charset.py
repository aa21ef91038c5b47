"""Bytes to text: the declared charset, else the page's own <meta charset>, else UTF-8,
else Windows-1252 (what browsers assume for undeclared Western pages)."""

from __future__ import annotations

import codecs
import re

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]+)""", re.I)
# WHATWG Encoding Standard: these labels mean windows-1252 on the web.
_AS_CP1252 = {"iso-8859-1", "latin-1", "latin1", "l1", "us-ascii", "ascii", "iso8859-1", "cp819", "windows-1252"}


def looks_binary(body: bytes) -> bool:
    """NUL bytes or many control characters in the first 4 KB: not text in any charset we read."""
    head = body[:4096]
    if b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return True
    controls = sum(1 for b in head if b < 9 or 13 < b < 32)
    return controls > len(head) * 0.05


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    label = label.strip().lower()
    if label in _AS_CP1252:
        return "cp1252"
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def _decode_cp1252(body: bytes) -> str:
    try:
        return body.decode("cp1252")
    except UnicodeDecodeError:  # 5 bytes are undefined in cp1252; latin-1 maps them to C1 controls
        return body.decode("latin-1")


def decode_text(body: bytes, *, declared: str | None, html: bool) -> str:
    if body.startswith(codecs.BOM_UTF8):
        return body[3:].decode("utf-8", errors="replace")
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return body.decode("utf-16", errors="replace")
    codec = _codec(declared)
    if codec is None and html:
        match = _META_CHARSET.search(body[:4096])
        codec = _codec(match.group(1).decode("ascii", "ignore")) if match else None
    if codec == "cp1252":
        return _decode_cp1252(body)
    if codec:
        try:
            return body.decode(codec)
        except UnicodeDecodeError:
            pass  # a wrong declaration: fall through to what the bytes say
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return _decode_cp1252(body)
