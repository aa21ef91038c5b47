"""`opencite sync`: schedules, one run's record, and bad input (one clear message, nothing lost)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from typer.testing import CliRunner

from opencite.ingest.sync import reports_dir, sync_once
from opencite.store.schedule import ScheduleError, parse_schedule
from tests.ingest.pages import article


@pytest.mark.parametrize("every, seconds", [("90", 90), ("30s", 30), ("15m", 900), ("1h", 3600), ("1.5h", 5400), ("2d", 172800)])
def test_every_parses_durations(every, seconds):
    assert parse_schedule(every, None).every == seconds


def test_cron_gives_the_next_time_in_utc():
    schedule = parse_schedule(None, "0 */6 * * *")
    moment = datetime(2026, 11, 25, 7, 30, tzinfo=timezone.utc)
    assert schedule.next_after(moment) == datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("every, cron, message", [
    (None, None, "give one schedule"), ("1h", "0 * * * *", "give one schedule"),
    ("soon", None, "--every 'soon' is not a duration"), ("0s", None, "not a duration"),
    (None, "every hour", "--cron 'every hour' is not a cron expression"), (None, "61 * * * *", "not a cron"),
])
def test_bad_schedules_say_what_is_accepted(every, cron, message):
    with pytest.raises(ScheduleError, match=message):
        parse_schedule(every, cron)


def test_runs_within_one_second_each_keep_their_report(tmp_path):
    from opencite.ingest.sync import RunRecord

    first = RunRecord(started="2026-11-25T23:50:45.120+00:00", status="ok").write(tmp_path, keep=5)
    second = RunRecord(started="2026-11-25T23:50:45.480+00:00", status="error").write(tmp_path, keep=5)
    assert first != second
    assert [json.loads(p.read_text())["status"] for p in sorted(tmp_path.glob("*.json"))] == ["ok", "error"]


def _snapshot(settings) -> dict:
    from opencite.store.index import open_index

    got = open_index(settings).collection.get(include=["documents"])
    return dict(zip(got["ids"], got["documents"]))


def test_a_run_keeps_its_report_and_bad_input_loses_nothing(settings, site):
    site.put("/a", article("A", {"Part": "Text about alpacas."}))
    site.put("/sitemap.xml", '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
             f"<url><loc>{site.url('/a')}</loc></url></urlset>", content_type="application/xml")
    sources = settings.data_dir / "sources.txt"
    sources.parent.mkdir(parents=True)
    sources.write_text(f"sitemap {site.url('/sitemap.xml')}\n", encoding="utf-8")
    first = sync_once(settings, sources)
    assert first.status == "ok" and first.report["summary"]["new"] == 1
    before = _snapshot(settings)
    assert before

    site.delete("/sitemap.xml")  # unreachable sitemap: the run fails as a whole, the index stays
    broken = sync_once(settings, sources)
    assert broken.status == "error" and "HTTP 404" in broken.error and "nothing indexed was touched" in broken.error
    sources.unlink()  # the sources file vanished
    vanished = sync_once(settings, sources)
    assert vanished.status == "error" and "sources file" in vanished.error and "missing" in vanished.error
    assert _snapshot(settings) == before
    saved = sorted(reports_dir(settings).glob("*.json"))
    assert saved and json.loads(saved[0].read_text())["status"] == "ok"


@pytest.fixture
def cli(settings_env):
    from opencite.cli import app

    return lambda *args: CliRunner().invoke(app, list(args))


def test_cli_refuses_a_bad_schedule_and_a_missing_sources_file(cli, settings_env, tmp_path):
    bad = cli("sync", "--every", "whenever")
    assert bad.exit_code == 2 and "--every 'whenever' is not a duration" in bad.output
    missing = cli("sync", "--every", "1h", "--sources", str(tmp_path / "nope.txt"))
    assert missing.exit_code == 2 and "nope.txt not found" in missing.output
    assert not (settings_env.data_dir / "index").exists()


def test_one_loop_runs_each_kb_on_its_own_schedule_one_at_a_time(settings):
    """Real runs of three KBs whose sources files are missing (each run records an error at once):
    each keeps its own reports, runs never overlap, a KB added or removed meanwhile is followed."""
    import threading

    from opencite.store import kb
    from opencite.ingest.sync import StopFlag, SyncTarget, sync_forever
    from opencite.store.schedule import Schedule

    def target(name: str, every: float) -> SyncTarget:
        if not kb.exists(settings, name):
            kb.create(settings, name)
        item = kb.describe(settings, name)
        item.sources_file.unlink(missing_ok=True)
        return SyncTarget(name, kb.kb_settings(settings, name), item.sources_file, Schedule(every=every))

    listed = [target("fast", 0.2), target("slow", 0.6)]
    stop, runs, removed_at = StopFlag(), [], []

    def on_run(t, record):
        runs.append((t.kb, record))
        if len(runs) == 4:
            listed.append(target("late", 0.2))  # created while the loop runs
        if [name for name, _ in runs].count("late") == 2 and not removed_at:
            listed.remove(next(t for t in listed if t.kb == "fast"))  # deleted while it runs
            removed_at.append(len(runs))
            threading.Timer(1.0, stop.event.set).start()

    sync_forever(lambda: list(listed), prune=True, stop=stop, on_run=on_run)

    names = [name for name, _ in runs]
    before, after = names[:removed_at[0]], names[removed_at[0]:]
    assert names[:2] == ["fast", "slow"]
    assert before.count("fast") > before.count("slow") >= 1  # each on its own schedule
    assert "fast" not in after and {"slow", "late"} <= set(after)
    assert all(r.status == "error" and "missing" in r.error for _, r in runs)
    records = sorted((r for _, r in runs), key=lambda r: r.started)
    assert all(a.finished <= b.started for a, b in zip(records, records[1:]))  # one run at a time
    for name in ("fast", "slow", "late"):  # each KB's reports in its own folder
        saved = list(reports_dir(kb.kb_settings(settings, name)).glob("*.json"))
        assert len(saved) == names.count(name)


def test_scheduled_targets_are_the_kbs_with_a_schedule(settings):
    from opencite.store import kb
    from opencite.ingest.sync import scheduled_targets
    from opencite.store.schedule import Schedule

    kb.create(settings, "docs", every="1h")
    kb.create(settings, "blog")
    kb.create(settings, "broken", cron="0 * * * *")
    (settings.data_dir / "kbs" / "broken" / "kb.json").write_text("{not json")
    errors = []
    assert [(t.kb, t.schedule) for t in scheduled_targets(settings, errors.append)] == [("docs", Schedule(every=3600))]
    assert len(errors) == 1 and "'broken'" in errors[0]
    hourly = settings.model_copy(update={"sync": settings.sync.model_copy(update={"every": "30m"})})
    assert [(t.kb, t.schedule.every) for t in scheduled_targets(hourly, errors.append)] == [
        ("default", 1800), ("blog", 1800), ("docs", 3600)]
    assert [t.settings.chroma.collection for t in scheduled_targets(hourly, errors.append)] == [
        "opencite", "opencite-blog", "opencite-docs"]
