"""The Makefile's model targets, read with `make -n` (what would run, in order; nothing
runs): TensorFlow's virtualenv only where a bundle needs a float file TensorFlow makes,
made once however many bundles need it, and the full search on request."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TF_MODELS = ("objects", "pose", "cutout")
ALL = ("efficientnet-lite0", "lite0-embed", "sketch", "faces", "objects", "cutout", "pose",
       "text")

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make (Debian: make)")


def _dry_run(tmp_path: Path, *args: str) -> list[str]:
    """The commands `make -n models` would run for a models folder in tmp_path, with a fresh
    (absent) TensorFlow virtualenv and an installed tools one."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    (venv / "bin" / "python").touch(mode=0o755)
    (venv / ".installed").touch()  # newer than pyproject.toml: installed
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", "models", f"MODELS_DIR={tmp_path / 'models'}",
         f"VENV={venv}", f"TF_VENV={tmp_path / 'tf'}", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.splitlines()


def _bundle(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "models" / name
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text("{}")


def test_a_first_build_makes_tensorflows_venv_once_then_each_float_before_its_bundle(tmp_path):
    lines = _dry_run(tmp_path)
    assert sum("-m pip install --quiet --upgrade pip" in line and "/tf/" in line
               for line in lines) == 1
    for name in TF_MODELS:
        convert = next(i for i, line in enumerate(lines)
                       if "tools/tf_models.py" in line and f"--only {name} " in line)
        bundle = next(i for i, line in enumerate(lines)
                      if "tools/default_models.py" in line and f"--only {name}" in line)
        assert convert < bundle
    built = [line.split("--only ")[1].split()[0] for line in lines
             if "tools/default_models.py" in line]
    assert sorted(built) == sorted(ALL)


def test_built_bundles_need_no_tensorflow(tmp_path):
    for name in ALL:
        _bundle(tmp_path, name)
    lines = _dry_run(tmp_path)
    assert not any("/tf/" in line or "tf_models.py" in line for line in lines)
    assert not any("default_models.py" in line for line in lines)


def test_a_missing_bundle_whose_float_file_is_there_needs_no_tensorflow(tmp_path):
    for name in ALL:
        if name != "pose":
            _bundle(tmp_path, name)
    build = tmp_path / "models" / ".build"
    build.mkdir()
    (build / "pose.fp32.onnx").touch()
    (build / "pose.source.json").touch()
    lines = _dry_run(tmp_path)
    assert not any("/tf/" in line or "tf_models.py" in line for line in lines)
    assert [line for line in lines if "default_models.py" in line] == \
        [f"{tmp_path / 'venv'}/bin/python tools/default_models.py --out "
         f"{tmp_path / 'models'} --only pose "]


def test_search_full_asks_for_every_candidate(tmp_path):
    lines = [line for line in _dry_run(tmp_path, "SEARCH=full")
             if "tools/default_models.py" in line]
    assert len(lines) == len(ALL) and all(line.endswith(" --search") for line in lines)
    assert not any("--search" in line for line in _dry_run(tmp_path / "plain"))


def test_make_run_installs_what_signs_results_and_make_test_adds_the_test_tools(tmp_path):
    venv = tmp_path / "venv"  # nothing installed yet
    run = subprocess.run(["make", "-n", "--no-print-directory", "run", f"VENV={venv}",
                          f"MODELS_DIR={tmp_path / 'models'}"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    installs = [line for line in run.stdout.splitlines() if "pip install --quiet -e" in line]
    assert len(installs) == 1 and "'.[tools,provenance]'" in installs[0]  # c2pa signs
    test = subprocess.run(["make", "-n", "--no-print-directory", f"{venv}/.installed-test",
                           f"VENV={venv}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    assert "'.[tools,provenance,test]'" in test.stdout


def test_the_longest_builds_start_first(tmp_path):
    order = [line.split("--only ")[1].split()[0] for line in _dry_run(tmp_path)
             if "tools/default_models.py" in line]
    assert order[:2] == ["text", "sketch"] and order[-1] == "faces"
