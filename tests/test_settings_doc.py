"""tools/settings_doc.py: the README's settings table and systemd/appliance.toml.example are
made from the settings' own declarations, and kept so."""

import pytest

from appliance import config
from tools import settings_doc


def test_the_readme_table_and_the_example_are_up_to_date(capsys):
    assert settings_doc.main([]) == 0, capsys.readouterr().out


def test_each_row_shows_the_settings_own_default_and_help():
    table = settings_doc.table()
    assert "| `server.port` | `8080` | TCP port; flag --port |" in table
    assert "| `models.sessions` | `0` | plain onnxruntime sessions per model, each with its " \
           "own worker thread; 0: one 1-thread session run by a worker per core with the " \
           "idle session, else half the cores (at least 1) |" in table
    assert "| `models.dir` | models/ in a checkout, else /var/lib/appliance/models |" in table
    assert table.count("\n| `") == len(config.describe())


def test_the_example_shows_an_installed_box(tmp_path):
    text = settings_doc.example()
    assert '# dir = "/var/lib/appliance/models"' in text
    assert "# max_upload_mb = 20.0" in text and "[usage]" in text
    path = tmp_path / "appliance.toml"
    path.write_text(text.replace("# port = 8080", "port = 9001"))
    assert config.load(path, env={}).server.port == 9001  # it is valid TOML, as commented


def test_a_readme_without_the_markers_is_refused():
    with pytest.raises(ValueError, match="has no <!-- settings"):
        settings_doc.readme_with_table("# no table here\n")

