import json
import subprocess
import sys

import pytest
from PIL import Image

from appliance import __version__, cli
from tests.conftest import image_bytes


def test_version_is_instant_and_imports_nothing_heavy():
    code = ("import sys\nfrom appliance import cli\ntry:\n    cli.main(['--version'])\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in ('onnxruntime', 'flask', 'numpy', 'PIL', 'waitress') "
            "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=30)
    assert done.stdout.splitlines() == [f"appliance {__version__}", "[]"]


def test_check_config_prints_effective_settings(tmp_path, capsys, monkeypatch):
    path = tmp_path / "a.toml"
    path.write_text("[server]\nport = 9001\n")
    monkeypatch.setenv("APPLIANCE_MODELS_QUEUE_SIZE", "3")
    assert cli.main(["check-config", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "port = 9001" in out and "queue_size = 3" in out


def test_bad_config_is_one_line_exit_2(tmp_path, capsys):
    path = tmp_path / "a.toml"
    path.write_text("[server]\nprot = 9001\n")
    assert cli.main(["check-config", "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["appliance: error: unknown setting 'server.prot' (config file): known keys "
                   "in [server] are host, port, threads, max_waiting, max_upload_mb, "
                   "max_receiving_mb, "
                   "body_timeout_s, max_streams, allowed_hosts"]


def test_models_lists_and_flags_broken(models_dir, capsys):
    assert cli.main(["models", "--models-dir", str(models_dir)]) == 0
    out = capsys.readouterr().out
    assert "tiny-classify" in out and out.count(" ok") == 4
    (models_dir / "tiny-embed" / "model.onnx").write_bytes(b"x")
    assert cli.main(["models", "--models-dir", str(models_dir)]) == 1
    assert "tiny-embed               BROKEN: tiny-embed/model.onnx: sha256" in \
        capsys.readouterr().out
    (models_dir / "tiny-faces").rename(models_dir / "faces")  # the server refuses it too
    assert cli.main(["models", "--models-dir", str(models_dir)]) == 1
    assert "faces                    BROKEN: faces/manifest.json.name: is 'tiny-faces'" in \
        capsys.readouterr().out


def test_infer_prints_the_same_json_as_the_api(models_dir, tmp_path, capsys, client):
    photo = tmp_path / "red.jpg"
    photo.write_bytes(image_bytes((255, 0, 0)))
    assert cli.main(["infer", str(photo), "--model", "tiny-classify", "--top-k", "2",
                     "--models-dir", str(models_dir)]) == 0
    local = json.loads(capsys.readouterr().out)
    remote = client.post("/v1/models/tiny-classify/infer?top_k=2",
                         data=photo.read_bytes()).get_json()
    assert local["predictions"] == remote["predictions"]
    assert local["attribution"] == remote["attribution"]


def test_infer_writes_image_results(models_dir, tmp_path, capsys):
    photo = tmp_path / "red.png"
    photo.write_bytes(image_bytes((255, 0, 0), size=(40, 20), fmt="PNG"))
    out = tmp_path / "neg.png"
    assert cli.main(["infer", str(photo), "--model", "tiny-negative", "-o", str(out),
                     "--models-dir", str(models_dir)]) == 0
    assert json.loads(capsys.readouterr().out)["output"] == str(out)
    with Image.open(out) as image:
        assert image.size == (40, 20) and image.getpixel((3, 3)) == (0, 255, 255)


def test_infer_errors_are_one_line(models_dir, tmp_path, capsys):
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image at all")
    assert cli.main(["infer", str(junk), "--model", "tiny-classify",
                     "--models-dir", str(models_dir)]) == 2
    assert "not an accepted image format" in capsys.readouterr().err
    assert cli.main(["infer", str(junk), "--model", "nope",
                     "--models-dir", str(models_dir)]) == 2
    assert "no model named 'nope' in" in capsys.readouterr().err
    assert cli.main(["infer", str(tmp_path / "absent.jpg"), "--model", "tiny-classify",
                     "--models-dir", str(models_dir)]) == 1
    assert "No such file or directory" in capsys.readouterr().err


def test_infer_takes_any_option_the_model_declares(tmp_path, capsys):
    from tests import models as tiny

    folder = tmp_path / "models"
    tiny.ocr_bundle(folder)
    picture, _ = tiny.ocr_picture(["YMCK"])
    image = tmp_path / "bars.png"
    picture.save(image)
    base = ["infer", str(image), "--model", "tiny-text", "--models-dir", str(folder)]
    assert cli.main([*base, "--option", "min_confidence=0"]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == "YMCK"
    assert cli.main([*base, "--option", "min_confidence=1.5"]) == 2
    assert "option min_confidence must be between 0 and 1, got 1.5" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main([*base, "--option", "min_confidence"])
    assert "write NAME=VALUE" in capsys.readouterr().err


def test_the_docstring_names_every_command():
    import argparse

    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name in commands.choices:
        assert name in cli.__doc__, f"appliance/cli.py's docstring does not name {name}"
