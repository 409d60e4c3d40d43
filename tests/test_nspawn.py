"""tools/nspawn.py without booting anything: the mirror, the cache key, what pip is given, and
a half-built root that is never used (the boot itself: tests/test_systemd_boot.py)."""

import os
import shutil

import pytest

from tools import nspawn


def test_the_mirror_is_the_one_apt_uses(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://security.example/debian-security\n"
        "Suites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n")
    assert nspawn.debian_mirror(tmp_path) == "http://mirror.example/debian"
    (tmp_path / "sources.list.d" / "debian.sources").unlink()
    (tmp_path / "sources.list").write_text(
        "deb [arch=amd64] http://old.example/debian bookworm main\n")
    assert nspawn.debian_mirror(tmp_path) == "http://old.example/debian"
    (tmp_path / "sources.list").unlink()
    assert nspawn.debian_mirror(tmp_path) == nspawn.DEFAULT_MIRROR


def test_each_recipe_has_its_own_root(tmp_path):
    one = nspawn.root_path(tmp_path, nspawn.recipe("http://a.example/debian"))
    other = nspawn.root_path(tmp_path, nspawn.recipe("http://b.example/debian"))
    assert one != other and one.parent == other.parent == tmp_path
    assert one == nspawn.root_path(tmp_path, nspawn.recipe("http://a.example/debian"))


def test_pip_is_given_its_settings_and_the_files_they_name(tmp_path):
    cert, wheels = tmp_path / "ca.crt", tmp_path / "wheels"
    cert.write_text("x")
    wheels.mkdir()
    env, files = nspawn.pip_environment({
        "PIP_CERT": str(cert), "PIP_FIND_LINKS": f"{wheels} /nonexistent https://x.example/",
        "PIP_DEFAULT_TIMEOUT": "60", "HOME": "/root"})
    assert env == {"PIP_CERT": str(cert), "PIP_DEFAULT_TIMEOUT": "60",
                   "PIP_FIND_LINKS": f"{wheels} /nonexistent https://x.example/"}
    assert {str(cert), str(wheels)} <= set(files)
    assert not any(f.startswith(("/nonexistent", "https:")) for f in files)


def test_a_half_built_root_is_never_used(tmp_path):
    if shutil.which("debootstrap") is None or os.geteuid() != 0:
        pytest.skip("needs debootstrap (Debian's debootstrap package) and root")
    mirror = f"file://{tmp_path}/no-mirror"
    half = nspawn.root_path(tmp_path, nspawn.recipe(mirror))
    (half / "etc").mkdir(parents=True)  # a build cut short: no completion marker
    stale = tmp_path / f".build-{half.name}-1"
    stale.mkdir()
    with pytest.raises(nspawn.NspawnError, match="debootstrap failed"):
        nspawn.ensure_root(cache=tmp_path, mirror=mirror, timeout=120)
    assert not (half / nspawn.COMPLETE).exists()
    assert list(tmp_path.glob(".build-*")) == []


def test_closing_a_container_that_never_started_does_nothing(tmp_path):
    container = nspawn.Container(tmp_path)
    container.close()
    assert not container.alive()
