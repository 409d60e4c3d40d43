"""Property tests with a bounded budget: the manifest parser, the archive checker and the
image decoder only ever fail with the box's own errors, and nothing is written outside."""

import contextlib
import io
import tarfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance import bundle, imaging, install
from appliance.errors import ApplianceError
from tests import models as tiny
from tests.conftest import image_bytes

BUDGET = settings(max_examples=150, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: st.lists(inner, max_size=4) |
                    st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=20)
VALID = tiny.manifest("prop", "classify")


@BUDGET
@given(JSON)
def test_any_json_is_parsed_or_refused_as_a_bundle_error(data):
    with contextlib.suppress(bundle.BundleError):
        bundle.parse_manifest(data)


@BUDGET
@given(st.sampled_from(sorted(VALID)), JSON)
def test_a_valid_manifest_with_one_field_replaced(field, value):
    data = {**VALID, field: value}
    with contextlib.suppress(bundle.BundleError):
        bundle.parse_manifest(data)


NAMES = st.sampled_from(["a/manifest.json", "a/model.onnx", "../x", "/abs", "a/../../x",
                         "a/b/c", ".", "a\\b", "a/lib.so", "a/./m"]) | st.text(max_size=20)
KINDS = st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE,
                         tarfile.CHRTYPE, tarfile.FIFOTYPE])


@BUDGET
@given(st.lists(st.tuples(NAMES, KINDS, st.binary(max_size=64)), max_size=6))
def test_archives_never_write_outside_the_staging_folder(tmp_path, entries):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name or "x")
            info.type = kind
            info.linkname = "/etc/passwd"
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    case = tmp_path / f"case-{len(list(tmp_path.iterdir()))}"
    dest = case / "staging" / "unpacked"
    dest.mkdir(parents=True)
    archive = case / "upload.tar.gz"
    archive.write_bytes(buffer.getvalue())
    with contextlib.suppress(ApplianceError):
        install.extract(archive, dest, 1 << 20)
    outside = [p for p in case.rglob("*") if p != archive and dest not in (p, *p.parents)
               and p != dest.parent]
    assert outside == []
    assert not any(p.is_symlink() for p in dest.rglob("*"))


SEEDS = [image_bytes(fmt=f, size=(20, 12)) for f in ("JPEG", "PNG", "GIF", "BMP", "WEBP")]


@BUDGET
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.integers(0, 10_000),
                                                  st.integers(0, 255)), max_size=8),
       st.integers(0, 10_000))
def test_mutated_images_decode_or_fail_cleanly(seed, flips, cut):
    data = bytearray(seed)
    for position, value in flips:
        data[position % len(data)] = value
    try:
        image = imaging.decode(bytes(data[: max(1, cut % (len(data) + 1))]), 1_000_000)
        assert image.mode == "RGB"
    except ApplianceError:
        pass


@pytest.mark.parametrize("prefix", [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"BM",
                                    b"RIFF\0\0\0\0WEBP"])
@BUDGET
@given(tail=st.binary(max_size=256))
def test_magic_then_noise(prefix, tail):
    with contextlib.suppress(ApplianceError):
        imaging.decode(prefix + tail, 1_000_000)
