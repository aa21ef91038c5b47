"""A knowledge base's own sync schedule through the real CLI: stored with the KB's record, shown
by `kb list`, used by `sync` unless --every/--cron override it; bad input changes nothing."""

import json

import pytest
from typer.testing import CliRunner

from opencite.cli import app
from opencite.store import kb
from opencite.ingest.sync import effective_schedule
from opencite.store.schedule import Schedule
from opencite.settings import get_settings


@pytest.fixture
def run(settings_env):
    runner = CliRunner()

    def invoke(*args):
        get_settings.cache_clear()
        result = runner.invoke(app, list(args), env={"COLUMNS": "250"})  # a table wide enough for its cells
        result.text = " ".join(result.output.split())  # rich wraps long messages
        return result

    return invoke


def listed(run) -> dict:
    return {r["name"]: r["schedule"] for r in json.loads(run("kb", "list", "--json").output)}


def test_schedules_are_stored_per_kb_shown_and_removed(run, settings):
    assert run("kb", "create", "docs", "--every", "1h").exit_code == 0
    assert run("kb", "create", "blog").exit_code == 0
    set_default = run("kb", "schedule", "default", "--cron", "0 */6 * * *")
    assert set_default.exit_code == 0 and "synced cron '0 */6 * * *'" in set_default.text
    assert listed(run) == {"default": {"cron": "0 */6 * * *"}, "docs": {"every": "1h"}, "blog": None}
    # Stored with each KB's own record; the default's beside its sources.txt.
    assert json.loads((settings.data_dir / "kbs" / "docs" / "kb.json").read_text())["schedule"] == {"every": "1h"}
    assert json.loads((settings.data_dir / "kb.json").read_text())["schedule"] == {"cron": "0 */6 * * *"}
    table = run("kb", "list")
    assert "every 1h" in table.text and "cron '0 */6 * * *'" in table.text

    others = {p: p.read_bytes() for p in (settings.data_dir / "kb.json", settings.data_dir / "kbs" / "docs" / "kb.json")}
    assert run("kb", "schedule", "blog", "--every", "30m").exit_code == 0
    assert {p: p.read_bytes() for p in others} == others  # nothing of another KB touched
    off = run("kb", "schedule", "docs", "--off")
    assert off.exit_code == 0 and "no sync schedule" in off.text
    assert listed(run) == {"default": {"cron": "0 */6 * * *"}, "docs": None, "blog": {"every": "30m"}}
    assert kb.describe(settings, "docs").created_at  # the rest of the record is kept


@pytest.mark.parametrize("args, message", [
    (["kb", "schedule", "docs", "--every", "soon"], "--every 'soon' is not a duration"),
    (["kb", "schedule", "docs", "--cron", "every hour"], "--cron 'every hour' is not a cron expression"),
    (["kb", "schedule", "docs"], "give exactly one of --every 1h"),
    (["kb", "schedule", "docs", "--every", "1h", "--off"], "give exactly one of --every 1h"),
    (["kb", "schedule", "docs", "--every", "1h", "--cron", "0 * * * *"], "give exactly one of --every 1h"),
    (["kb", "schedule", "nope", "--every", "1h"], "opencite kb create nope"),
    (["kb", "schedule", "../x", "--every", "1h"], "Invalid knowledge base name '../x'"),
    (["kb", "create", "new", "--every", "0s"], "--every '0s' is not a duration"),
    (["kb", "create", "new", "--every", "1h", "--cron", "0 * * * *"], "give one schedule"),
])
def test_bad_schedules_and_unknown_kbs_are_refused_and_change_nothing(run, settings, args, message):
    assert run("kb", "create", "docs", "--every", "1h").exit_code == 0
    before = sorted((p, p.read_bytes()) for p in settings.data_dir.rglob("*") if p.is_file())
    result = run(*args)
    assert result.exit_code == 2 and message in result.text, result.output
    assert sorted((p, p.read_bytes()) for p in settings.data_dir.rglob("*") if p.is_file()) == before
    assert not (settings.data_dir / "kbs" / "new").exists()


def test_flags_override_the_stored_schedule_which_overrides_the_settings(settings):
    kb.create(settings, "docs", every="2h")
    plain = kb.describe(settings, "default")
    fallback = settings.model_copy(update={"sync": settings.sync.model_copy(update={"every": "15m"})})
    docs = kb.describe(settings, "docs")
    assert effective_schedule(settings, docs) == Schedule(every=7200)
    assert effective_schedule(settings, docs, cron="0 * * * *") == Schedule(cron="0 * * * *")
    assert effective_schedule(fallback, docs) == Schedule(every=7200)
    assert effective_schedule(fallback, plain) == Schedule(every=900)
    assert effective_schedule(settings, plain) is None


def test_sync_uses_the_stored_schedule_and_says_how_to_give_one(run, settings, tmp_path):
    missing = str(tmp_path / "nope.txt")
    none = run("sync", "--sources", missing)
    assert none.exit_code == 2 and "no schedule for the knowledge base 'default'" in none.text
    assert "opencite kb schedule default --every 1h" in none.text
    assert run("kb", "schedule", "default", "--every", "1h").exit_code == 0
    stored = run("sync", "--sources", missing)  # the stored schedule is accepted: on to the sources check
    assert stored.exit_code == 2 and "nope.txt not found" in stored.text
    bad_flag = run("sync", "--every", "whenever", "--sources", missing)
    assert bad_flag.exit_code == 2 and "--every 'whenever' is not a duration" in bad_flag.text


@pytest.mark.parametrize("extra", [["--every", "1h"], ["--once"], ["--kb", "docs"], ["--sources", "x.txt"]])
def test_sync_all_refuses_options_that_belong_to_one_kb(run, extra):
    result = run("sync", "--all", *extra)
    assert result.exit_code == 2 and "--all runs each knowledge base on its own schedule" in result.text
    assert extra[0] in result.text and "opencite kb schedule NAME" in result.text
