"""Run the API app for real (uvicorn on a free port, in a thread) for client tests."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import httpx
import uvicorn

from tests.conftest import free_port


class LiveApi:
    def __init__(self, app, port: int, api_key: str = "unused") -> None:
        self.app = app
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.base_url = f"{self.url}/v1"
        self.api_key = api_key
        self.model = app.state.settings.api.model_id

    def health(self) -> dict:
        return httpx.get(f"{self.url}/health", timeout=10).json()


@contextmanager
def live_api(app, api_key: str = "unused"):
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API server did not start")
        time.sleep(0.05)
    try:
        yield LiveApi(app, port, api_key)
    finally:
        server.should_exit = True
        thread.join(15)
