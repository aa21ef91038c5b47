"""The run's outputs: results.json (config, summary, every question) and report.md with PNG plots."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers and in CI
import matplotlib.pyplot as plt  # noqa: E402

CRITERIA = ("faithfulness", "relevance", "correctness")


def write_report(out: Path, config: dict, summary: dict, records: list[dict]) -> dict[str, str]:
    out = Path(out)
    results = out / "results.json"
    results.write_text(json.dumps({"config": config, "summary": summary, "questions": records},
                                  indent=2, ensure_ascii=False), encoding="utf-8")
    plots = {
        "scores": _plot_scores(out / "scores.png", records),
        "retrieval": _plot_retrieval(out / "retrieval.png", records),
        "latency": _plot_latency(out / "latency.png", records),
    }
    report = out / "report.md"
    report.write_text(_markdown(config, summary, records, plots), encoding="utf-8")
    return {"json": str(results), "report": str(report), **{k: str(v) for k, v in plots.items()}}


def _plot_scores(path: Path, records: list[dict]) -> Path:
    fig, axes = plt.subplots(1, len(CRITERIA), figsize=(11, 3.2), sharey=True)
    for ax, crit in zip(axes, CRITERIA):
        scores = [r["judge"][crit]["score"] for r in records
                  if crit in (r.get("judge") or {}) and r["judge"][crit]["score"] is not None]
        counts = [sum(1 for s in scores if round(s) == v) for v in range(1, 6)]
        ax.bar(range(1, 6), counts, color="#4c72b0")
        ax.set_title(f"{crit} (n={len(scores)})")
        ax.set_xticks(range(1, 6))
        ax.set_xlabel("judge score")
    axes[0].set_ylabel("answers")
    return _save(fig, path)


def _plot_retrieval(path: Path, records: list[dict]) -> Path:
    scored = [r["retrieval"] for r in records if r.get("retrieval")]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, name in zip(axes, ("ndcg@10", "mrr@10")):
        ax.hist([m[name] for m in scored], bins=[i / 10 for i in range(11)], color="#55a868")
        ax.set_title(f"{name} per question (n={len(scored)})")
        ax.set_xlabel(name)
    axes[0].set_ylabel("questions")
    return _save(fig, path)


def _plot_latency(path: Path, records: list[dict]) -> Path:
    first = [r["timings"]["first_token_s"] for r in records if (r.get("timings") or {}).get("first_token_s") is not None]
    total = [r["timings"]["total_s"] for r in records if (r.get("timings") or {}).get("total_s") is not None]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.hist([first, total], bins=20, label=["time to first token", "total"], color=["#dd8452", "#4c72b0"])
    ax.set_xlabel("seconds")
    ax.set_ylabel("questions")
    ax.legend()
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _markdown(config: dict, summary: dict, records: list[dict], plots: dict[str, Path]) -> str:
    lines = ["# opencite eval report", ""]
    lines += ["| setting | value |", "|---|---|"]
    lines += [f"| {k} | {fmt(v)} |" for k, v in config.items()]
    lines += ["", f"{summary['questions']} questions, {summary['errors']} with errors.", ""]
    for section in ("retrieval", "answers", "citations", "not_covered", "latency"):
        if not summary[section]:  # e.g. answer-side sections of a --retrieval-only run
            continue
        lines += [f"## {section.replace('_', ' ')}", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {fmt(v)} |" for k, v in summary[section].items()]
        lines.append("")
    lines += ["## plots", ""]
    lines += [f"![{name}]({Path(p).name})" for name, p in plots.items()]
    lines += ["", "## questions", "",
              "| id | ndcg@10 | faithful | relevant | correct | citations | first token s | total s | error |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        j = r.get("judge") or {}
        t = r.get("timings") or {}
        lines.append("| " + " | ".join([
            str(r["id"]),
            fmt((r.get("retrieval") or {}).get("ndcg@10")),
            *(fmt((j.get(c) or {}).get("score")) for c in CRITERIA),
            fmt((r.get("citations") or {}).get("citations")),
            fmt(t.get("first_token_s")), fmt(t.get("total_s")),
            (r.get("error_kind") or "") if r.get("error") else "",
        ]) + " |")
    return "\n".join(lines) + "\n"
