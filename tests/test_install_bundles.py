"""Owner-only installs over HTTP: PUT and DELETE, archives checked member by member, the
first session in a separate process, an atomic swap. Each hardening row is in a test's name."""

import io
import json
import tarfile

import onnx
import pytest
from onnx import helper

from appliance import config
from appliance.registry import Registry
from tests import models as tiny
from tests.conftest import ADMIN, image_bytes

AUTH = {"Authorization": f"Bearer {ADMIN}"}


def _tar(entries) -> bytes:
    """A .tar.gz from (TarInfo, bytes or None) pairs."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _file(name: str, data: bytes) -> tuple:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _bundle_archive(tmp_path, name="newbie", task="classify", model=None, mutate=None) -> bytes:
    folder = tmp_path / "src"
    found = tiny.write_bundle(folder, name, task, model=model)
    if mutate:
        mutate(found.path)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(found.path, arcname=name)
    return buffer.getvalue()


def _put(client, name, body, headers=AUTH):
    return client.put(f"/v1/models/{name}", data=body, headers=headers,
                      content_type="application/gzip")


def test_install_then_serve_replace_and_delete(client, tmp_path, models_dir):
    response = _put(client, "newbie", _bundle_archive(tmp_path))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["replaced"] is False
    assert client.post("/v1/models/newbie/infer", data=image_bytes((0, 0, 255))).get_json()[
        "predictions"][0]["label"] == "blue"
    again = _put(client, "newbie", _bundle_archive(tmp_path / "v2"))
    assert again.status_code == 200 and again.get_json()["replaced"] is True
    assert (models_dir / ".newbie.last-good").is_dir()
    assert client.delete("/v1/models/newbie", headers=AUTH).get_json() == {"removed": "newbie"}
    assert client.post("/v1/models/newbie/infer", data=image_bytes()).status_code == 404
    assert not (models_dir / "newbie").exists()
    assert not (models_dir / ".staging").exists() or not any((models_dir / ".staging").iterdir())


def test_row1_row2_installs_are_for_the_admin(client, tmp_path, settings):
    assert _put(client, "newbie", b"x", headers={}).status_code == 401
    settings.auth.infer_token = "viewer"
    from appliance.auth import Auth

    client.application.extensions["appliance"].auth = Auth(ADMIN, "viewer")
    forbidden = _put(client, "newbie", b"x", headers={"Authorization": "Bearer viewer"})
    assert forbidden.status_code == 403
    assert client.delete("/v1/models/tiny-embed",
                         headers={"Authorization": "Bearer viewer"}).status_code == 403


@pytest.mark.parametrize(("kind", "message"), [
    ("dotdot", "points outside the bundle"), ("absolute", "points outside the bundle"),
    ("symlink", "is a symbolic link"), ("hardlink", "is a hard link"),
    ("device", "is a device node")])
def test_row15_hostile_members_are_400_and_nothing_escapes(client, tmp_path, kind, message):
    info = tarfile.TarInfo({"dotdot": "../../escaped", "absolute": "/tmp/escaped-abs"}.get(
        kind, "x/link"))
    data = b"pwned"
    if kind in ("dotdot", "absolute"):
        info.size = len(data)
    else:
        info.type = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                     "device": tarfile.CHRTYPE}[kind]
        info.linkname = "/etc/passwd"
        data = None
    response = _put(client, "newbie", _tar([_file("x/manifest.json", b"{}"), (info, data)]))
    assert response.status_code == 400
    assert message in response.get_json()["error"]["message"]
    assert not (tmp_path / "escaped").exists()


def test_row16_archive_bomb_is_413_and_staging_is_clean(client, settings, models_dir):
    settings.models.max_install_mb = 1
    bomb = _tar([_file("x/model.onnx", b"\0" * (3 << 20))])  # compresses to a few KB
    assert len(bomb) < 50_000
    response = _put(client, "x", bomb)
    assert response.status_code == 413
    staging = models_dir / ".staging"
    assert not staging.exists() or list(staging.iterdir()) == []


def test_row17_external_data_is_422_and_the_old_model_serves(client, tmp_path):
    def external(path):
        model = onnx.load(str(path / "model.onnx"))
        onnx.save(model, str(path / "model.onnx"), save_as_external_data=True,
                  all_tensors_to_one_file=True, location="weights.bin", size_threshold=0)
        # then point the weights out of the bundle, as a hostile file would
        model = onnx.load(str(path / "model.onnx"), load_external_data=False)
        for tensor in model.graph.initializer:
            for entry in tensor.external_data:
                if entry.key == "location":
                    entry.value = "../../outside.bin"
        (path / "model.onnx").write_bytes(model.SerializeToString())
        _resign(path)

    response = _put(client, "tiny-classify", _bundle_archive(
        tmp_path, "tiny-classify", model=tiny.conv_net(size=8), mutate=external))
    assert response.status_code == 422
    assert client.post("/v1/models/tiny-classify/infer", data=image_bytes()).status_code == 200


def _resign(path):
    from appliance.bundle import file_sha256

    manifest = json.loads((path / "manifest.json").read_text())
    manifest["model"]["sha256"] = file_sha256(path / "model.onnx")
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_row18_garbage_protobuf_is_422(client, tmp_path):
    def garbage(path):
        (path / "model.onnx").write_bytes(b"\x08\x01this is not a model")
        _resign(path)

    response = _put(client, "tiny-classify", _bundle_archive(tmp_path, "tiny-classify",
                                                              mutate=garbage))
    assert response.status_code == 422
    assert "cannot be served" in response.get_json()["error"]["message"]
    assert client.post("/v1/models/tiny-classify/infer", data=image_bytes()).status_code == 200


def test_row19_inputs_that_do_not_match_the_manifest_are_422(client, tmp_path):
    def wrong_size(path):
        manifest = json.loads((path / "manifest.json").read_text())
        manifest["input"]["size"] = [16, 16]
        (path / "manifest.json").write_text(json.dumps(manifest))

    response = _put(client, "newbie", _bundle_archive(tmp_path, mutate=wrong_size))
    assert response.status_code == 422
    assert "the manifest implies (1, 3, 16, 16)" in response.get_json()["error"]["message"]


def test_row20_custom_op_domain_and_libraries_are_422(client, tmp_path):
    model = tiny.classify_model()
    model.graph.node.append(helper.make_node("Magic", ["logits"], ["x"], domain="evil.ops"))
    model.opset_import.append(helper.make_opsetid("evil.ops", 1))
    response = _put(client, "newbie", _bundle_archive(tmp_path, model=model))
    assert response.status_code == 422
    library = _put(client, "newbie", _tar([_file("x/manifest.json", b"{}"),
                                           _file("x/custom_ops.so", b"\x7fELF...")]))
    assert library.status_code == 422
    assert "shared library" in library.get_json()["error"]["message"]


def test_name_mismatch_and_not_an_archive(client, tmp_path):
    wrong = _put(client, "other-name", _bundle_archive(tmp_path))
    assert wrong.status_code == 422 and "PUT it to /v1/models/newbie" in \
        wrong.get_json()["error"]["message"]
    junk = _put(client, "newbie", b"not a tarball at all")
    assert junk.status_code == 400 and "not a readable .tar.gz" in \
        junk.get_json()["error"]["message"]


def test_row21_row22_a_cut_install_is_cleaned_and_undone_at_start(tmp_path, models_dir):
    (models_dir / ".staging" / "abc" / "unpacked").mkdir(parents=True)
    (models_dir / ".staging" / "abc" / "upload.tar.gz").write_bytes(b"half an upload")
    (models_dir / "tiny-embed").rename(models_dir / ".tiny-embed.last-good")  # cut mid-swap
    settings = config.load(env={}, overrides={"models.dir": str(models_dir),
                                              "state.dir": str(tmp_path / "s")})
    with Registry(settings) as registry:
        registry.load_all()
        assert "tiny-embed" in registry.runners()
    assert not (models_dir / ".staging").exists()
    assert not (models_dir / ".tiny-embed.last-good").exists()


def test_cli_install_from_a_folder_and_an_archive(tmp_path, models_dir, capsys):
    from appliance import cli

    source = tiny.write_bundle(tmp_path / "src", "from-folder")
    assert cli.main(["install", str(source.path), "--models-dir", str(models_dir)]) == 0
    assert "installed from-folder (classify, fp32)" in capsys.readouterr().out
    archive = tmp_path / "b.tar.gz"
    archive.write_bytes(_bundle_archive(tmp_path / "arch", "from-archive"))
    assert cli.main(["install", str(archive), "--models-dir", str(models_dir)]) == 0
    assert (models_dir / "from-archive" / "manifest.json").is_file()
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(_tar([_file("../x", b"1")]))
    assert cli.main(["install", str(bad), "--models-dir", str(models_dir)]) == 2
    assert "points outside the bundle" in capsys.readouterr().err


def test_row23_disk_full_is_507_and_the_old_model_serves(tmpfs, tmp_path):
    from appliance.api import create_app
    from appliance.services import Services

    models = tmpfs("size=1m") / "models"
    tiny.write_bundle(models, "tiny-classify")
    settings = config.load(env={}, overrides={"models.dir": str(models),
                                              "state.dir": str(tmp_path / "state")})
    with Services.build(settings, admin=ADMIN) as services:
        services.start(background=False)
        client = create_app(settings, services).test_client()
        big = tiny.write_bundle(tmp_path / "src", "tiny-classify",
                                model=tiny.slow_classify_model(matmuls=1, side=600))
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            tar.add(big.path, arcname="tiny-classify")
        response = _put(client, "tiny-classify", buffer.getvalue())
        assert response.status_code == 507, response.get_json()
        assert "disk holding" in response.get_json()["error"]["message"]
        assert client.post("/v1/models/tiny-classify/infer",
                           data=image_bytes()).status_code == 200
        assert list((models / ".staging").iterdir()) == []


def test_members_that_clash_or_have_no_name_are_400(client):
    control = _put(client, "x", _tar([_file("a/b\x01c", b"1")]))
    assert control.status_code == 400 and "control characters" in control.get_json()[
        "error"]["message"]
    nameless = _put(client, "x", _tar([_file(".", b"1")]))
    assert nameless.status_code == 400 and "without a name" in nameless.get_json()["error"][
        "message"]
    folder = tarfile.TarInfo("a/b")
    folder.type = tarfile.DIRTYPE
    clash = _put(client, "x", _tar([(folder, None), _file("a/b", b"1")]))
    assert clash.status_code == 400 and "clashes" in clash.get_json()["error"]["message"]
