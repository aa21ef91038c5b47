"""Prometheus metrics and the per-request log line of the RAG API.

`RequestObserver` (pure ASGI, outermost but CORS) counts every request by route, KB and status and
logs one line per request — the key's name, never the key. `ApiMetrics.observe_answer` records what
each finished answer did. Each app has its own registry, so tests and several apps never share counts.
"""

from __future__ import annotations

import logging
import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

log = logging.getLogger("opencite.api.requests")

ROUTES = ("/v1/chat/completions", "/v1/models", "/health", "/metrics")
# Seconds: retrieval is milliseconds to a second; first token adds the LLM's prefill.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ApiMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, active_generations) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("opencite_requests", "HTTP requests by route, knowledge base and status",
                                ["route", "kb", "status"], registry=r)
        self.retrieval = Histogram("opencite_retrieval_seconds", "Retrieval time per answer", ["kb"],
                                   buckets=_LATENCY_BUCKETS, registry=r)
        self.first_token = Histogram("opencite_first_token_seconds",
                                     "Time from request to the first answer token", ["kb"],
                                     buckets=_LATENCY_BUCKETS, registry=r)
        self.answers = Counter("opencite_answers", "Answers by citation outcome (cited, uncited, error)",
                               ["kb", "outcome"], registry=r)
        self.dropped = Counter("opencite_dropped_citation_markers",
                               "Citation markers the chain removed because they named no source", ["kb"], registry=r)
        self.verdicts = Counter("opencite_attribution_verdicts",
                                "Checked answer sentences by verdict (supported, contradicted, not_found)",
                                ["kb", "verdict"], registry=r)
        gauge = Gauge("opencite_active_generations", "Answers being generated now", registry=r)
        gauge.set_function(active_generations)

    def observe_answer(self, kb: str, answer) -> None:
        timings = answer.timings or {}
        if "retrieve_s" in timings:
            self.retrieval.labels(kb).observe(timings["retrieve_s"])
        if "first_token_s" in timings:
            self.first_token.labels(kb).observe(timings["first_token_s"])
        outcome = "error" if answer.error else ("cited" if answer.cited else "uncited")
        self.answers.labels(kb, outcome).inc()
        if answer.dropped_markers:
            self.dropped.labels(kb).inc(answer.dropped_markers)
        attribution = getattr(answer, "attribution", None)
        for verdict, count in (getattr(attribution, "verdicts", None) or {}).items():
            if count:
                self.verdicts.labels(kb, verdict).inc(count)

    def observe_error(self, kb: str) -> None:
        self.answers.labels(kb, "error").inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class RequestObserver:
    def __init__(self, app, *, metrics: ApiMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        state = scope.setdefault("state", {})

        async def observed_send(message):
            if message["type"] == "http.response.start":
                self._observe(scope, state, message["status"], time.perf_counter() - start)
            await send(message)

        await self.app(scope, receive, observed_send)

    def _observe(self, scope, state: dict, status: int, seconds: float) -> None:
        path = scope["path"]
        route = path if path in ROUTES else ("/v1/models/{id}" if path.startswith("/v1/models/") else "other")
        kb = state.get("kb", "")
        self.metrics.requests.labels(route, kb, str(status)).inc()
        key = state.get("api_key")
        log.info("%s %s %s kb=%s key=%s %.1fms", scope["method"], path, status, kb or "-",
                 key.name if key is not None else "-", seconds * 1000,
                 extra={"method": scope["method"], "path": path, "status": status, "kb": kb,
                        "key_name": key.name if key is not None else None,
                        "ms_to_headers": round(seconds * 1000, 1)})


def log_config(json_logs: bool, level: str = "info") -> dict:
    """uvicorn's `log_config`: its own loggers and opencite's in one format. With JSON, each line is
    one object (python-json-logger). opencite's request line (with KB and key name) replaces uvicorn's
access line in both formats."""
    formatter = ({"()": "pythonjsonlogger.json.JsonFormatter",
                  "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s", "rename_fields": {"asctime": "time"}}
                 if json_logs else {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"})
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "default",
                                 "stream": "ext://sys.stderr"}},
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": [], "propagate": False},  # opencite's request line replaces it
            "opencite": {"handlers": ["default"], "level": level, "propagate": False},
        },
    }
