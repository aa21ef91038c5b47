"""ASGI middleware in front of every route: optional bearer keys and the request size limit.

The matched key (an `ApiKey`: its name and KBs, never the secret) goes to the routes as
`request.state.api_key`; with no keys configured every request acts as `OPEN_ACCESS`.

Pure ASGI (not BaseHTTPMiddleware) so streamed responses and client disconnects pass through
untouched, and so an oversized body is refused while it arrives, not after it is buffered.
"""

from __future__ import annotations

from opencite.app.api.errors import error_body
from opencite.app.api.keys import OPEN_ACCESS, Keyring

OPEN_PATHS = {"/health"}


class ApiGuard:
    def __init__(self, app, *, keyring: Keyring, max_request_bytes: int):
        self.app = app
        self.keyring = keyring
        self.max_request_bytes = max_request_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        key = OPEN_ACCESS
        if self.keyring and scope["path"] not in OPEN_PATHS and scope["method"] != "OPTIONS":
            key = self._authorized(scope)
            if key is None:
                return await _reply(send, 401, error_body(
                    401, "Incorrect or missing API key. Fix: send 'Authorization: Bearer <key>' "
                    "with a key from OPENCITE_API__API_KEY or OPENCITE_API__KEYS_FILE.", code="invalid_api_key"),
                    extra=[(b"www-authenticate", b"Bearer")])
        scope.setdefault("state", {})["api_key"] = key
        limit = self.max_request_bytes
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                too_big = False
            if too_big:
                return await _reply(send, 413, _too_large(limit))

        if declared is not None:
            return await self.app(scope, receive, send)
        # Chunked upload (no Content-Length): read it here, at most limit+1 bytes, then replay it.
        # (Raising inside receive() would reach FastAPI's body parser and turn into a 400.)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > limit:
                return await _reply(send, 413, _too_large(limit))
        body = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _authorized(self, scope):
        value = (_header(scope, b"authorization") or "").strip()
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self.keyring.match(token.strip())


def _too_large(limit: int) -> bytes:
    return error_body(413, f"Request body exceeds {limit} bytes. Fix: send fewer/shorter messages or raise "
                      "OPENCITE_API__MAX_REQUEST_BYTES.", code="request_too_large")


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _reply(send, status: int, body: bytes, extra: list | None = None) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})
