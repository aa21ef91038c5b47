"""`opencite ui` / `up`'s launcher without starting anything (the runs are in test_up.py and
test_first_run.py, slow tier)."""

from __future__ import annotations

from opencite.app.launch import ui_command
from opencite.cli.up import index_count, llm_answers


def option(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1]


def test_streamlit_never_prompts_and_opens_the_browser_only_when_asked(settings):
    shown = ui_command(settings, port=8599, open_browser=True)
    hidden = ui_command(settings, port=8599, open_browser=False)
    for cmd in (shown, hidden):
        assert option(cmd, "--server.showEmailPrompt") == "false"  # first run: no email prompt
        assert option(cmd, "--server.port") == "8599"
    assert option(shown, "--server.headless") == "false" and option(hidden, "--server.headless") == "true"


def test_empty_index_and_absent_llm_are_seen_without_loading_anything(settings):
    settings.llm.base_url = "http://127.0.0.1:9/v1"  # nothing listens on the discard port
    assert index_count(settings) == 0
    assert llm_answers(settings) is False
