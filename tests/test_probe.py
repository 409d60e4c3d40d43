"""The install probe: a child process that loads a model and runs it on zeros and on
real-looking pictures, each under a deadline, within a memory limit."""

import time

import numpy as np
import pytest

from appliance import bundle as bundles
from appliance import config, install, probe
from appliance.errors import BundleError
from tests import models as tiny


def test_probe_inputs_look_like_pictures(tmp_path):
    found = tiny.write_bundle(tmp_path, "fine")
    runs = dict(probe.probe_inputs(found, (1, 3, tiny.SIZE, tiny.SIZE)))
    assert list(runs) == ["zeros", "a synthetic photograph", "uniform noise", "a white image"]
    assert all(t.shape == (1, 3, tiny.SIZE, tiny.SIZE) and t.dtype == np.float32
               for t in runs.values())
    photo = np.asarray(probe.synthetic_photo())
    assert photo.min() == 0 and photo.max() == 255 and photo.std() > 30
    assert runs["a white image"].max() == pytest.approx(1.0)  # the top of the input range


def test_row34_a_model_that_runs_for_ever_on_a_picture_is_refused(tmp_path):
    endless = tiny.write_bundle(tmp_path, "endless", model=tiny.endless_model())
    started = time.monotonic()
    with pytest.raises(BundleError, match=r"the model cannot be served: the model did not "
                       r"finish within 0.5 s on a synthetic photograph \(models.timeout_s\)"):
        install.probe(endless.path, timeout_s=0.5)
    assert time.monotonic() - started < 5


def test_row34_a_model_that_allocates_gigabytes_on_a_picture_is_refused(tmp_path):
    hungry = tiny.write_bundle(tmp_path, "hungry", model=tiny.hungry_model(3.0))
    with pytest.raises(BundleError, match=r"the model ran out of memory on a synthetic "
                       r"photograph: it asked for 2,[0-9]{3} MB at once, over the probe.s limit "
                       r"of 512 MB \(models.probe_memory_mb\)"):
        install.probe(hungry.path, timeout_s=5)


def test_row34_the_memory_limit_is_the_setting(tmp_path):
    hungry = tiny.write_bundle(tmp_path, "hungry", model=tiny.hungry_model(0.3))
    install.probe(hungry.path, timeout_s=5, memory_mb=512)  # 300 MB fits
    with pytest.raises(BundleError, match=r"limit of 256 MB \(models.probe_memory_mb\)"):
        install.probe(hungry.path, timeout_s=5, memory_mb=256)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["efficientnet-lite0", "faces", "lite0-embed", "sketch"])
def test_row34_the_default_bundles_pass_the_probe_under_the_default_limits(name):
    folder = config.CHECKOUT / "models" / name
    if not (folder / bundles.MANIFEST).is_file():
        pytest.skip(f"{name} is not built here (make models)")
    defaults = config.Models()
    install.probe(folder, defaults.timeout_s, defaults.probe_memory_mb)


def test_row34_the_default_probe_memory_fits_under_the_units_memory_max():
    import re

    unit = (config.CHECKOUT / "systemd" / "appliance.service").read_text()
    memory_max = re.search(r"^MemoryMax=(\d+)([MG])$", unit, re.M)
    limit_mb = int(memory_max.group(1)) * (1024 if memory_max.group(2) == "G" else 1)
    server_mb = 300  # measured: 190-250 MB serving the four default models
    assert config.Models().probe_memory_mb + server_mb < limit_mb


# -- bundles with more than one graph: the whole task runs, on a picture with text too -------

def test_a_text_bundle_passes_the_probe(tmp_path):
    found = tiny.ocr_bundle(tmp_path, "text")
    install.probe(found.path, timeout_s=5)


@pytest.mark.parametrize(("kind", "message"), [
    ("endless", r"the model cannot be served: the model did not finish within 1 s on a "
                r"picture with lines of text \(whole task\) \(models.timeout_s\)"),
    ("hungry", r"the model cannot be served: the model ran out of memory on a picture with "
               r"lines of text \(whole task\): it asked for 3,000 MB at once, over the "
               r"probe's limit of 512 MB \(models.probe_memory_mb\)"),
])
def test_row34_a_recogniser_that_misbehaves_only_on_text_is_refused(tmp_path, kind, message):
    # The detector alone is harmless, and on the photograph it finds one line, too few
    # for this recogniser: only the picture with text brings it out.
    found = tiny.ocr_bundle(tmp_path, "text", rec=tiny.ocr_hostile_rec_model(kind))
    started = time.monotonic()
    with pytest.raises(BundleError, match=message):
        install.probe(found.path, timeout_s=1)
    assert time.monotonic() - started < 15


def _resign(found, graph: str) -> None:
    """Sign a changed graph again, as a hostile upload would: its checksum is no defence
    against the bundle's own author."""
    import json

    manifest = json.loads((found.path / bundles.MANIFEST).read_text())
    manifest["graphs"][graph]["sha256"] = bundles.file_sha256(found.graph_path(graph))
    (found.path / bundles.MANIFEST).write_text(json.dumps(manifest))


def test_a_graph_onnxruntime_cannot_load_is_refused_naming_it(tmp_path):
    found = tiny.ocr_bundle(tmp_path, "text")
    found.graph_path("cls").write_bytes(b"\x08\x01this is not a model")
    _resign(found, "cls")
    with pytest.raises(BundleError, match=r"the model cannot be served: text/manifest.json."
                       r"graphs.cls: onnxruntime cannot load cls.onnx: "):
        install.probe(found.path, timeout_s=5)


def test_a_recogniser_that_disagrees_with_its_labels_is_refused(tmp_path):
    found = tiny.ocr_bundle(tmp_path, "text", rec=tiny.ocr_rec_model(classes=7))
    with pytest.raises(BundleError, match=r"on a synthetic photograph \(whole task\): graph rec "
                       r"answers shape \(1, 40, 7\): 1 rows of 6 scores were expected"):
        install.probe(found.path, timeout_s=5)
