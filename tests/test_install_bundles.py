"""Owner-only installs over HTTP: PUT and DELETE, archives checked member by member, the
first session in a separate process, an atomic swap. Each hardening row is in a test's name."""

import io
import json
import tarfile
import threading
import time

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


def _free_size_model():
    """classify_model with free height and width (any input size loads)."""
    model = tiny.classify_model()
    dims = model.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    return model


def _six_thousand(path):
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["input"]["size"] = [6000, 6000]
    (path / "manifest.json").write_text(json.dumps(manifest))


def _big_labels(path):
    (path / "labels.txt").write_bytes(b"label\n" * 3_500_000)  # 21 MB, 100 KB packed


@pytest.mark.parametrize(("model", "mutate", "message"), [
    (tiny.endless_model, None, "the model cannot be served: the model did not finish within "
     "1 s on a synthetic photograph (models.timeout_s)"),
    (tiny.hungry_model, None, "the model cannot be served: the model ran out of memory on a "
     "synthetic photograph: it asked for "),
    (_free_size_model, _six_thousand, "newbie/manifest.json.input.size: 6000 x 6000 has a "
     "side over 4096, the limit"),
    (tiny.classify_model, _big_labels, "newbie/labels.txt: 21,000,000 bytes, over the "
     "1,048,576 byte limit for a labels file"),
], ids=["loop", "constant-of-shape", "6000x6000", "21MB-labels"])
def test_row34_models_and_manifests_that_take_the_box_are_422_with_the_reason(
        client, settings, tmp_path, models_dir, model, mutate, message):
    settings.models.timeout_s = 1.0
    response = _put(client, "newbie", _bundle_archive(tmp_path, model=model(), mutate=mutate))
    assert response.status_code == 422, response.get_json()
    assert message in response.get_json()["error"]["message"]
    assert not (models_dir / "newbie").exists()
    assert client.post("/v1/models/tiny-classify/infer", data=image_bytes()).status_code == 200


@pytest.mark.slow
def test_row33_a_wedging_model_is_stopped_reported_removed_and_sigterm_is_clean(tmp_path):
    from tools.live_server import LiveServer, post_image, request

    models = tmp_path / "models"
    tiny.write_bundle(models, "tiny-classify")
    for name in ("endless", "endless-two"):  # placed directly: no probe ever saw them
        tiny.write_bundle(models, name, model=tiny.endless_model())
    state = tmp_path / "state"
    state.mkdir()
    token = "a-live-admin-token-for-row-33"
    (state / "admin-token").write_text(token + "\n")
    (state / "admin-token").chmod(0o600)
    admin = {"Authorization": f"Bearer {token}"}
    with LiveServer(models, state, env={"APPLIANCE_MODELS_TIMEOUT_S": "1.5"}) as server:
        server.wait_ready()
        started = time.monotonic()
        status, body, _ = post_image(f"{server.url}/v1/models/endless/infer",
                                     image_bytes((255, 255, 255)))
        assert status == 504 and json.loads(body)["error"]["code"] == "model_timeout"
        assert 1.5 <= time.monotonic() - started < 3.0
        cpu = _cpu_s(server.process.pid)
        time.sleep(1.0)
        assert _cpu_s(server.process.pid) - cpu < 0.3, "the stopped run still burns CPU"
        listed = json.loads(request("GET", f"{server.url}/v1/models")[1])["models"]
        assert {m["name"]: m for m in listed}["endless"]["overruns"] == 1
        _delete_during_a_run(server, admin)
        assert post_image(f"{server.url}/v1/models/tiny-classify/infer",
                          image_bytes())[0] == 200
        last = []
        running = threading.Thread(target=lambda: last.append(post_image(
            f"{server.url}/v1/models/endless-two/infer", image_bytes((255, 255, 255)))[0]))
        running.start()
        time.sleep(0.5)
        stopping = time.monotonic()
        assert server.stop() == 0
        assert time.monotonic() - stopping < 15
        running.join(5)
    assert last and last[0] in (503, 504)  # answered, not cut off
    assert "terminate called" not in "".join(server.output)
    assert "Traceback" not in "".join(server.output)


def _delete_during_a_run(server, admin):
    from tools.live_server import post_image, request

    answers = []
    running = threading.Thread(target=lambda: answers.append(post_image(
        f"{server.url}/v1/models/endless/infer", image_bytes((255, 255, 255)))[0]))
    running.start()
    time.sleep(0.4)  # the run is going
    started = time.monotonic()
    status, body, _ = request("DELETE", f"{server.url}/v1/models/endless", headers=admin)
    assert status == 200, body
    assert time.monotonic() - started < 1.0
    running.join(5)
    assert answers == [503]


def _cpu_s(pid: int) -> float:
    """User plus system CPU seconds of process `pid` (Linux)."""
    import os

    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _attribution(**changes):
    def mutate(path):
        manifest = json.loads((path / "manifest.json").read_text())
        manifest["attribution"].update(changes)
        (path / "manifest.json").write_text(json.dumps(manifest))
    return mutate


def test_row36_a_200_kb_author_is_422_naming_the_field_and_the_cap(client, tmp_path):
    response = _put(client, "newbie", _bundle_archive(
        tmp_path, mutate=_attribution(author="A" * 200_000)))
    assert response.status_code == 422
    message = response.get_json()["error"]["message"]
    assert message.startswith("newbie/manifest.json.attribution.author: is 200000 characters "
                              "long, the limit is 300: shorten it")
    assert len(message) < 300


def test_row36_a_non_latin_licence_installs(client, tmp_path):
    response = _put(client, "newbie", _bundle_archive(
        tmp_path, mutate=_attribution(license="CC BY 4.0 \u2014 \u7f72\u540d")))
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["license"] == "CC BY 4.0 \u2014 \u7f72\u540d"
