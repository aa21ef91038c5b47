from typer.testing import CliRunner

from opencite.cli import app
from opencite.settings import get_settings


def test_a_bad_setting_ends_any_command_with_one_line_naming_it_and_the_fix(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env of the checkout's
    monkeypatch.setenv("OPENCITE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OPENCITE_EMBEDDING__OPENVINO", "bogus")
    monkeypatch.setenv("OPENCITE_RETRIEVAL__K", "many")
    for command in (["doctor"], ["ingest", "http://127.0.0.1:9/x"], ["config"]):
        get_settings.cache_clear()
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2, (command, result.output)
        assert "OPENCITE_EMBEDDING__OPENVINO='bogus'" in result.output and "'auto', 'on' or 'off'" in result.output
        assert "OPENCITE_RETRIEVAL__K='many'" in result.output and "Fix:" in result.output
        assert "Traceback" not in result.output
    monkeypatch.delenv("OPENCITE_EMBEDDING__OPENVINO")
    monkeypatch.delenv("OPENCITE_RETRIEVAL__K")
    get_settings.cache_clear()
    assert CliRunner().invoke(app, ["config"]).exit_code == 0
