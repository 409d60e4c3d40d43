"""Content Credentials on the box's pictures: signed results read back with the C2PA SDK's own
reader, a changed pixel reported as tampered, a forged manifest as not valid, provenance off,
the box's keys (made, kept, rotated, the owner's own, corrupt), /v1/verify and `appliance
verify`."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import socket
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

c2pa = pytest.importorskip("c2pa", reason="needs the C2PA library: pip install c2pa-python")

from appliance import provenance, signkeys  # noqa: E402
from appliance.api import create_app  # noqa: E402
from appliance.cli import main  # noqa: E402
from appliance.errors import ConfigError  # noqa: E402
from appliance.services import Services  # noqa: E402
from tests import models as tiny  # noqa: E402
from tests.conftest import ADMIN, image_bytes  # noqa: E402

UNTRUSTED = ["signingCredential.untrusted"]


@pytest.fixture
def models_dir(models_dir):
    """The tiny bundles and a tiny segment model (cut-outs are pictures too)."""
    tiny.write_bundle(models_dir, "tiny-segment", "segment")
    return models_dir


def _read(data: bytes, mime: str = "image/png") -> dict:
    """The SDK's own reading of `data`: the active manifest, failures and state."""
    with c2pa.Reader(mime, io.BytesIO(data)) as reader:
        store = json.loads(reader.json())
    manifest = store["manifests"][store["active_manifest"]]
    failures = [f["code"] for f in store["validation_results"]["activeManifest"]["failure"]]
    return {"manifest": manifest, "failures": failures, "state": store["validation_state"]}


def _assertion(manifest: dict, label: str) -> dict:
    return next(a["data"] for a in manifest["assertions"] if a["label"] == label)


def _post(client, name: str, query: str = "", data: bytes | None = None):
    response = client.post(f"/v1/models/{name}/infer{query}",
                           data={"image": (io.BytesIO(data or image_bytes()), "in.jpg")})
    assert response.status_code == 200, response.data
    return response


@pytest.mark.parametrize("name, query, mime", [
    ("tiny-negative", "", "image/png"),
    ("tiny-negative", "?format=jpeg", "image/jpeg"),
    ("tiny-negative", "?format=json", "image/png"),
    ("tiny-segment", "", "image/png"),
    ("tiny-segment", "?output=mask", "image/png"),
    ("tiny-segment", "?format=json", "image/png"),
])
def test_every_picture_is_signed_and_the_sdk_reads_it_back(client, name, query, mime):
    upload = image_bytes()
    response = _post(client, name, query, upload)
    if "json" in query:
        body = response.get_json()
        data, result_id = base64.b64decode(body["image"]), body["result_id"]
        assert body["attribution"]["author"] == "Test Author"
    else:
        data, result_id = response.data, response.headers["X-Result-Id"]
        assert response.mimetype == mime
    read = _read(data, mime)
    assert read["state"] == "Valid" and read["failures"] == UNTRUSTED
    manifest = read["manifest"]
    actions = _assertion(manifest, "c2pa.actions.v2")["actions"]
    assert [a["action"] for a in actions] == ["c2pa.opened", "c2pa.edited"]
    assert actions[1]["digitalSourceType"] == provenance.SOURCE_TYPE
    assert actions[1]["softwareAgent"] == {"name": name, "version": "0.0.1"}
    [ingredient] = manifest["ingredients"]
    assert ingredient["relationship"] == "parentOf"
    assert ingredient["instance_id"] == "sha256:" + hashlib.sha256(upload).hexdigest()
    assert "data" not in ingredient and "thumbnail" not in ingredient  # not embedded
    assert "thumbnail" not in manifest  # the SDK's thumbnail is off
    result = _assertion(manifest, provenance.ASSERTION)
    assert result["model"] == {"name": name, "version": "0.0.1",
                               "task": "segment" if "segment" in name else "image-to-image"}
    assert result["attribution"] == {"author": "Test Author", "source": "tests/models.py",
                                     "license": "CC0-1.0"}
    assert result["input_sha256"] == hashlib.sha256(upload).hexdigest()
    assert result["result_id"] == result_id
    assert result["box"] and result["made"]
    assert manifest["signature_info"]["common_name"] == "appliance box results signer"


def test_signing_adds_little(client, services):
    response = _post(client, "tiny-negative")
    assert "sign;dur=" in response.headers["Server-Timing"]
    services.signer = None
    plain = _post(client, "tiny-negative")
    assert 0 < len(response.data) - len(plain.data) < 8192


def test_results_have_a_stable_result_id(client):
    ids = [_post(client, "tiny-classify").get_json()["result_id"] for _ in range(2)]
    assert ids[0] == ids[1] and len(ids[0]) == 64
    other = _post(client, "tiny-classify", data=image_bytes((0, 255, 0))).get_json()
    assert other["result_id"] != ids[0] and other["attribution"]["license"] == "CC0-1.0"
    pictures = [_post(client, "tiny-negative").headers["X-Result-Id"] for _ in range(2)]
    assert pictures[0] == pictures[1] != ids[0]


def _change_one_pixel(png: bytes) -> bytes:
    """`png` with one pixel's red value changed, every other byte (the manifest too) kept:
    the image data is inflated, changed and deflated into one IDAT chunk."""
    head, chunks, at = png[:8], [], 8
    while at < len(png):
        length, kind = struct.unpack(">I4s", png[at:at + 8])
        chunks.append((kind, png[at + 8:at + 8 + length]))
        at += 12 + length
    pixels = bytearray(zlib.decompress(b"".join(d for k, d in chunks if k == b"IDAT")))
    pixels[1] ^= 0x40  # the first pixel of the first row (byte 0 is the row's filter)
    out, done = [head], False
    for kind, data in chunks:
        if kind == b"IDAT":
            if done:
                continue
            kind, data, done = kind, zlib.compress(bytes(pixels)), True
        out.append(struct.pack(">I", len(data)) + kind + data
                   + struct.pack(">I", zlib.crc32(kind + data)))
    return b"".join(out)


def test_a_changed_pixel_is_reported_as_tampered(client):
    signed = _post(client, "tiny-negative").data
    changed = _change_one_pixel(signed)
    assert changed != signed
    read = _read(changed)
    assert "assertion.dataHash.mismatch" in read["failures"]
    response = client.post("/v1/verify", data={"image": (io.BytesIO(changed), "x.png")})
    assert response.status_code == 200
    report = response.get_json()
    assert report["signed"] and report["tampered"] and not report["valid"]
    assert report["message"].startswith("the picture was changed after it was signed")


def test_verify_says_what_made_a_signed_picture(client):
    signed = _post(client, "tiny-negative").data
    report = client.post("/v1/verify", data=signed, content_type="image/png").get_json()
    assert report["signed"] and report["valid"] and report["from_box"]
    assert not report["tampered"] and report["trusted"] and report["signed_by"] == "this box"
    assert report["model"]["name"] == "tiny-negative"
    assert report["attribution"]["license"] == "CC0-1.0"
    assert report["message"].startswith("made by tiny-negative 0.0.1 on ")
    assert report["message"].endswith("; the signature holds, by this box's own key")
    as_json = client.post("/v1/verify", json={"image": base64.b64encode(signed).decode()})
    assert as_json.get_json()["valid"]


def test_verify_of_an_unsigned_picture(client):
    report = client.post("/v1/verify", data={"image": (io.BytesIO(image_bytes()), "a.jpg")})
    assert report.status_code == 200
    assert report.get_json() == {
        "signed": False, "valid": False, "tampered": False, "from_box": False,
        "message": "no Content Credentials (C2PA manifest) in this file"}


def test_a_forged_manifest_is_not_valid(client):
    signed = _post(client, "tiny-negative").data
    manifest_at = signed.index(b"caBX")  # the manifest's chunk, before the text chunks
    assert manifest_at < signed.index(b"Test Author") < signed.index(b"iTXt")
    forged = signed.replace(b"Test Author", b"Evil Author", 1)  # it says who, falsely
    report = client.post("/v1/verify", data=forged, content_type="image/png").get_json()
    assert report["signed"] and not report["valid"], report
    assert _read(forged)["state"] != "Valid"


def test_verify_refuses_what_is_not_a_picture(client):
    response = client.post("/v1/verify", data=b"not a picture at all",
                           content_type="application/octet-stream")
    assert response.status_code == 415
    gif = image_bytes(fmt="GIF")
    response = client.post("/v1/verify", data=gif, content_type="image/gif")
    assert response.status_code == 415
    assert "verify reads the PNG and JPEG files the box makes" in response.get_json()[
        "error"]["message"]
    for broken in (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff" + bytes(range(50))):
        response = client.post("/v1/verify", data=broken, content_type="image/png")
        assert response.status_code == 400
        assert response.get_json()["error"]["message"].startswith(
            "the file is not a readable PNG or JPEG (")


def test_provenance_off_gives_plain_files(settings):
    settings.provenance.enabled = False
    with Services.build(settings, admin=ADMIN) as services:
        services.start(background=False)
        assert services.signer is None
        client = create_app(settings, services).test_client()
        response = _post(client, "tiny-negative")
        assert response.headers["X-Result-Id"]
        assert "sign;dur" not in response.headers["Server-Timing"]
        with pytest.raises(c2pa.C2paError):
            _read(response.data)
        assert not (settings.state.dir and os.path.exists(
            signkeys.folder(settings.state.dir)))  # no key made


def test_without_the_library_results_go_out_unsigned_with_a_warning(settings, monkeypatch,
                                                                    caplog):
    monkeypatch.setitem(sys.modules, "c2pa", None)  # import c2pa raises ImportError
    assert provenance.open_signer(settings) is None
    assert "pip install c2pa-python" in caplog.text


def test_the_box_makes_its_key_once_privately(settings, services):
    folder = signkeys.folder(settings.state.dir)
    for name in ("signer.pem", "ca-key.pem"):
        assert (folder / name).stat().st_mode & 0o777 == 0o600
    first = services.signer.key
    again = signkeys.load_or_make(settings.state.dir)
    assert again.chain_pem == first.chain_pem and again.alg == "es256"


def _config(settings, tmp_path) -> str:
    config = tmp_path / "box.toml"
    config.write_text(f'[state]\ndir = "{settings.state.dir}"\n')
    return str(config)


def test_rotate_makes_a_new_key_from_the_same_ca(settings, services, tmp_path, capsys):
    before = services.signer.key
    ca = (signkeys.folder(settings.state.dir) / "ca.pem").read_bytes()
    assert main(["provenance", "--config", _config(settings, tmp_path), "rotate"]) == 0
    assert "restart the service" in capsys.readouterr().out
    with Services.build(settings, admin=ADMIN) as fresh:
        after = fresh.signer.key
    assert after.key_pem != before.key_pem and after.issuer == before.issuer
    assert after.chain_pem.endswith(ca)


def _owner_key(tmp_path, mismatched: bool = False):
    """An owner's own CA-issued key and chain, as the box would make them elsewhere."""
    other = tmp_path / "elsewhere"
    key = signkeys.rotate(other)
    (tmp_path / "owner.key").write_bytes(key.key_pem)
    chain = signkeys.rotate(other).chain_pem if mismatched else key.chain_pem
    (tmp_path / "owner.crt").write_bytes(chain)
    return tmp_path / "owner.key", tmp_path / "owner.crt"


def test_the_owner_installs_their_own_key(settings, tmp_path, capsys):
    key, certs = _owner_key(tmp_path)
    assert main(["provenance", "--config", _config(settings, tmp_path), "install-key",
                 str(key), str(certs)]) == 0
    assert "restart the service" in capsys.readouterr().out
    with Services.build(settings, admin=ADMIN) as services:
        assert services.signer.key.key_pem == key.read_bytes()
    settings.provenance.key_file, settings.provenance.cert_file = str(key), str(certs)
    with Services.build(settings, admin=ADMIN) as services:
        assert services.signer.key.source == f"{key}, {certs}"


def test_a_key_with_another_keys_certificate_is_refused(settings, tmp_path):
    key, certs = _owner_key(tmp_path, mismatched=True)
    with pytest.raises(ConfigError, match="is not the signing key's"):
        signkeys.install(settings.state.dir, key, certs)
    settings.provenance.key_file = str(key)
    with pytest.raises(ConfigError, match="go together"):
        Services.build(settings, admin=ADMIN)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_corrupt_key_stops_the_start_with_one_line(settings, services, damage):
    """Decided: the start refuses (exit 2, one line naming the file and the fixes) rather
    than serve results that quietly stop being signed; docs/hardening.md row 43."""
    path = signkeys.folder(settings.state.dir) / signkeys.SIGNER_FILE
    data = path.read_bytes()
    path.write_bytes({"truncated": data[:len(data) // 2], "garbage": os.urandom(300),
                      "empty": b""}[damage])
    with pytest.raises(ConfigError) as caught:
        Services.build(settings, admin=ADMIN)
    message = caught.value.message
    assert message.startswith(f"the provenance signing key or certificate in {path} does "
                              "not read (")
    assert message.endswith("run `appliance provenance rotate` for a new box key, install "
                            "yours with `appliance provenance install-key KEY CERTS`, or set "
                            "provenance.enabled = false")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("APPLIANCE_")}
    environ.update(APPLIANCE_STATE_DIR=settings.state.dir, APPLIANCE_MODELS_DIR=settings.models.dir,
                   APPLIANCE_DISCOVERY_ENABLED="false", ORT_DISABLE_TELEMETRY="1")
    done = subprocess.run([sys.executable, "-m", "appliance", "serve", "--port", "0", "--host",
                           "127.0.0.1"], capture_output=True, text=True, env=environ,
                          timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == f"appliance: error: {message}"


def test_a_read_only_state_folder_signs_with_a_key_for_this_run(settings, caplog, tmp_path):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the state folder should be")
    settings.state.dir = str(blocked)
    key = signkeys.load_or_make(settings.state.dir)
    assert key.source == "memory" and "a key made for this run only" in caplog.text


def test_appliance_verify_on_a_signed_and_an_unsigned_file(client, settings, tmp_path,
                                                          capsys):
    signed, plain = tmp_path / "signed.png", tmp_path / "plain.jpg"
    signed.write_bytes(_post(client, "tiny-negative").data)
    plain.write_bytes(image_bytes())
    config = _config(settings, tmp_path)
    assert main(["verify", "--config", config, str(signed)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{signed}: made by tiny-negative 0.0.1 on ")
    assert "  author: Test Author\n" in out and "  license: CC0-1.0\n" in out
    assert main(["verify", "--config", config, str(plain)]) == 1
    assert capsys.readouterr().out == (f"{plain}: no Content Credentials (C2PA manifest) in "
                                       "this file\n")
    assert main(["verify", "--config", config, "--json", str(signed)]) == 0
    assert json.loads(capsys.readouterr().out)["from_box"] is True
    elsewhere = tmp_path / "elsewhere.toml"  # another box's state folder: not its key
    elsewhere.write_text(f'[state]\ndir = "{tmp_path / "other-state"}"\n')
    assert main(["verify", "--config", str(elsewhere), str(signed)]) == 1
    assert capsys.readouterr().out.startswith(
        f"{signed}: signed by a key this box does not know: the manifest claims it was made "
        "by tiny-negative 0.0.1 on ")


@pytest.mark.slow
def test_a_2_gb_file_to_verify_is_413_before_it_is_read(models_dir, tmp_path):
    from tools.live_server import LiveServer

    with LiveServer(models_dir, tmp_path / "state") as live:
        live.wait_ready()
        with socket.create_connection(("127.0.0.1", live.port), timeout=10) as sock:
            sock.sendall(b"POST /v1/verify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                         b"image/png\r\nContent-Length: %d\r\n\r\n" % (2 << 30))
            sock.sendall(b"\x89PNG\r\n\x1a\n" + b"\0" * 65536)
            reply = b""
            while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
                part = sock.recv(65536)
                if not part:
                    break
                reply += part
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    body = json.loads(reply.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "payload_too_large"
    assert "(2048.0 MB sent)" in body["error"]["message"]


def test_gallery_captures_are_signed_as_made_here(services, tmp_path):
    from appliance.hardware.cameras import FolderCamera, RetryingCamera
    from appliance.hardware.displays import FileDisplay
    from appliance.standalone import StandaloneLoop

    pictures = tmp_path / "camera"
    pictures.mkdir()
    (pictures / "a.jpg").write_bytes(image_bytes(size=(96, 64)))
    services.settings.standalone.gallery_dir = str(tmp_path / "gallery")
    camera = RetryingCamera(lambda: FolderCamera(str(pictures), 5.0, lambda: 0.0))
    kiosk = StandaloneLoop(services, camera, FileDisplay(str(tmp_path / "screen"), (160, 90)),
                  clock=lambda: 0.0, run_command=lambda command: None)
    kiosk.status_until = 0.0
    kiosk.tick()
    kiosk.capture()
    [saved] = (tmp_path / "gallery").glob("capture-*.jpg")
    read = _read(saved.read_bytes(), "image/jpeg")
    assert read["failures"] == UNTRUSTED
    [action] = _assertion(read["manifest"], "c2pa.actions.v2")["actions"]
    assert action["action"] == "c2pa.created"
    assert action["digitalSourceType"] == provenance.COMPOSITE
    result = _assertion(read["manifest"], provenance.ASSERTION)
    assert result["model"]["name"] == services.registry.active and result["input_sha256"] is None


def test_an_unset_clock_is_said_in_the_manifest(client, services):
    """A box without a battery clock after a power cut reads 1970: the result is still
    signed (who made it holds), and its manifest and verify say the time is unknown."""
    services.signer.clock = lambda: 86400.0 * 3  # 1970-01-04
    signed = _post(client, "tiny-negative").data
    result = _assertion(_read(signed)["manifest"], provenance.ASSERTION)
    assert result["made"] == "1970-01-04T00:00:00+00:00" and result["clock_set"] is False
    report = client.post("/v1/verify", data=signed, content_type="image/png").get_json()
    assert report["valid"] and report["clock_set"] is False
    assert "at an unknown time (the box's clock was not set: it read 1970-01-04" in \
        report["message"]
    services.signer.clock = lambda: provenance.clock_floor() + 1
    result = _assertion(_read(_post(client, "tiny-negative").data)["manifest"],
                        provenance.ASSERTION)
    assert result["clock_set"] is True


def test_the_clock_floor_is_2025_or_the_install():
    assert provenance.clock_floor() >= provenance.SANE_AFTER
    assert provenance.made_at(provenance.SANE_AFTER - 1, provenance.SANE_AFTER)["clock_set"] \
        is False


def test_appliance_infer_signs_its_picture_as_the_service_does(settings, tmp_path, capsys):
    photo = tmp_path / "in.png"
    photo.write_bytes(image_bytes((255, 0, 0), fmt="PNG"))
    out = tmp_path / "out.png"
    assert main(["infer", str(photo), "--model", "tiny-negative", "-o", str(out),
                 "--config", _config(settings, tmp_path),
                 "--models-dir", settings.models.dir]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["signed"] is True and len(body["result_id"]) == 64
    read = _read(out.read_bytes())
    assert read["failures"] == UNTRUSTED
    result = _assertion(read["manifest"], provenance.ASSERTION)
    assert result["model"]["name"] == "tiny-negative" and result["result_id"] == \
        body["result_id"]
    assert result["input_sha256"] == hashlib.sha256(photo.read_bytes()).hexdigest()
    assert main(["verify", "--config", _config(settings, tmp_path), str(out)]) == 0


def test_appliance_infer_with_provenance_off_writes_a_plain_picture(settings, tmp_path,
                                                                     capsys):
    photo = tmp_path / "in.png"
    photo.write_bytes(image_bytes((255, 0, 0), fmt="PNG"))
    out = tmp_path / "out.png"
    config = tmp_path / "off.toml"
    config.write_text(Path(_config(settings, tmp_path)).read_text() +
                      "\n[provenance]\nenabled = false\n")
    assert main(["infer", str(photo), "--model", "tiny-negative", "-o", str(out),
                 "--config", str(config), "--models-dir", settings.models.dir]) == 0
    assert json.loads(capsys.readouterr().out)["signed"] is False
    assert main(["verify", str(out)]) == 1


def _sign_elsewhere(tmp_path, per: int = 0, ingredients: tuple[bytes, ...] = (),
                    data: dict | None = None) -> bytes:
    """A PNG signed with a key made elsewhere (not this box's), as an attacker's own tool
    would: an assertion holding `per` empty lists (or `data`), and `ingredients` (signed
    files, their manifests copied into the store)."""
    key = signkeys.load_or_make(tmp_path / "evil-state")
    settings = c2pa.Settings.from_dict(provenance._SIGN_SETTINGS)
    info = c2pa.C2paSignerInfo(key.alg, key.chain_pem, key.key_pem, None)
    context = c2pa.Context(settings=settings, signer=c2pa.Signer.from_info(info))
    manifest = {"claim_generator_info": [{"name": "x", "version": "1"}], "title": "t",
                "assertions": [{"label": "org.evil.big",
                                "data": data if data is not None else {"x": [[]] * per}}]}
    builder = c2pa.Builder(json.dumps(manifest), context=context)
    for number, ingredient in enumerate(ingredients):
        builder.add_ingredient({"title": f"i{number}", "relationship": "componentOf"},
                               "image/png", io.BytesIO(ingredient))
    out = io.BytesIO()
    builder.sign("image/png", io.BytesIO(image_bytes(size=(16, 16), fmt="PNG")), out)
    context.close()
    settings.close()
    return out.getvalue()


def _refused(client, data: bytes) -> str:
    response = client.post("/v1/verify", data=data, content_type="image/png")
    assert response.status_code == 413, response.data[:300]
    assert response.get_json()["error"]["code"] == "payload_too_large"
    return response.get_json()["error"]["message"]


def test_row43_a_store_of_many_manifests_is_413_before_the_sdk_reads_it(client, tmp_path):
    """The attack's file: signed ingredients nested in one store (21 of them took 560 MB
    and 4 s of CPU); a few small ones are enough to pass MAX_MANIFESTS."""
    layer = [_sign_elsewhere(tmp_path, 10) for _ in range(5)]
    nested = _sign_elsewhere(tmp_path, 10, tuple(layer))
    assert len(nested) < 64 * 1024
    assert _refused(client, nested) == (
        "the file's C2PA manifest store holds 6 manifests and 5 ingredients: verify reads "
        "stores of at most 64 KB, 4 manifests and 8 ingredients (the box's own: about 4 KB, "
        "one manifest), none compressed")
    few = _sign_elsewhere(tmp_path, 10, tuple(layer[:2]))  # 3 manifests: read
    assert client.post("/v1/verify", data=few, content_type="image/png").status_code == 200


def test_row43_a_big_manifest_store_is_413_before_the_sdk_reads_it(client, tmp_path):
    big = _sign_elsewhere(tmp_path, 70_000)  # one byte of CBOR an empty list: 70 KB
    assert _refused(client, big).startswith(
        "the file's C2PA manifest store is 71 KB: verify reads stores of at most 64 KB")
    assert client.post("/v1/verify", data=_sign_elsewhere(tmp_path, 20_000),
                       content_type="image/png").status_code == 200


def test_row43_the_sdks_json_is_parsed_with_safejsons_caps(client, tmp_path):
    deep = _sign_elsewhere(tmp_path, data={"x": json.loads("[" * 100 + "]" * 100)})
    assert _refused(client, deep) == ("the file's C2PA manifest is more than verify parses "
                                      "(the JSON is nested deeper than 32 levels)")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _box(kind: bytes, content: bytes) -> bytes:
    return struct.pack(">I", 8 + len(content)) + kind + content


def _superbox(uuid4: bytes, label: bytes, *content: bytes) -> bytes:
    description = _box(b"jumd", uuid4 + bytes.fromhex("00110010800000aa00389b71") + b"\x03"
                       + label + b"\0")
    return _box(b"jumb", description + b"".join(content))


def test_row43_a_compressed_store_or_a_png_of_many_chunks_is_413(client):
    """The SDK inflates a Brotli box (a few KB can hold megabytes), and walks a PNG at about
    14 us a chunk (a 20 MB PNG of empty chunks took it 21 s)."""
    png = image_bytes(size=(16, 16), fmt="PNG")
    store = _superbox(b"c2pa", b"c2pa", _superbox(b"c2ma", b"urn:c2pa:x",
                                                  _box(b"brob", b"jumb" + b"\0" * 64)))
    compressed = png[:33] + _chunk(b"caBX", store) + png[33:]
    assert _refused(client, compressed).startswith(
        "the file's C2PA manifest store is compressed: verify reads stores of at most 64 KB")
    chunky = png[:33] + _chunk(b"tEXt", b"a\0b") * 10_000 + png[33:]
    assert _refused(client, chunky) == ("the PNG has more than 10000 chunks: verify reads "
                                        "the files the box makes (a handful of chunks)")
    fewer = png[:33] + _chunk(b"tEXt", b"a\0b") * 9_000 + png[33:]
    assert client.post("/v1/verify", data=fewer, content_type="image/png").status_code == 200


def test_row43_a_manifest_signed_by_a_key_this_box_does_not_know_is_a_claim_only(
        client, tmp_path):
    """Anyone can sign the box's claim with a key of their own (forge.py: a fresh key,
    box 'victim-box'): only this box's keys make it a fact."""
    forger = provenance.Signer(signkeys.load_or_make(tmp_path / "evil-state"), "victim-box")
    claim = provenance.Claim(model="efficientnet-lite0", version="1.0", task="classify",
                             attribution={"author": "Evil Author", "license": "CC0"},
                             input_sha256=None)
    forged = forger.sign(image_bytes(fmt="PNG"), "image/png", claim)
    forger.close()
    report = client.post("/v1/verify", data=forged, content_type="image/png").get_json()
    assert report["valid"] and not report["from_box"] and not report["trusted"]
    assert report["signed_by"] == "a key this box does not know"
    assert "box" not in report and "model" not in report and "attribution" not in report
    assert report["claim"]["box"] == "victim-box"
    assert report["claim"]["attribution"] == {"author": "Evil Author", "license": "CC0"}
    assert report["message"].startswith(
        "signed by a key this box does not know: the manifest claims it was made by "
        "efficientnet-lite0 1.0 on victim-box at ")
    assert report["message"].endswith(", and nothing here vouches for that claim")
    assert "its key is the box's own" not in report["message"]


def test_the_owners_installed_key_is_known_but_not_its_cas_other_keys(settings, tmp_path):
    key, certs = _owner_key(tmp_path)
    signkeys.install(settings.state.dir, key, certs)
    sibling = signkeys.rotate(tmp_path / "elsewhere")  # the owner's CA issued it too
    with Services.build(settings, admin=ADMIN) as services:
        services.start(background=False)
        client = create_app(settings, services).test_client()
        own = client.post("/v1/verify", data=_post(client, "tiny-negative").data,
                          content_type="image/png").get_json()
        assert own["from_box"] and own["signed_by"] == "the owner's key", own
        assert own["message"].endswith("; the signature holds, by the key its owner installed")
        other = provenance.Signer(sibling, "other")
        claim = provenance.Claim(model="m", version="1", task="classify", attribution={},
                                 input_sha256=None)
        signed = other.sign(image_bytes(fmt="PNG"), "image/png", claim)
        other.close()
        report = client.post("/v1/verify", data=signed, content_type="image/png").get_json()
        assert report["valid"] and not report["from_box"] and "claim" in report, report


@pytest.mark.parametrize("field, value, problem", [
    ("model", "just a string", "model is not an object of text name, version and task"),
    ("model", {"name": 5, "version": "1", "task": "t"},
     "model is not an object of text name, version and task"),
    ("attribution", ["a"], "attribution is not an object of at most 8 texts"),
    ("box", {"a": 1}, "box is not text"),
    ("clock_set", "yes", "input_sha256 is not text, or clock_set not true or false"),
])
def test_row43_a_malformed_claim_is_reported_never_a_500(client, services, field, value,
                                                         problem):
    result = services.signer._result
    services.signer._result = lambda claim: {**result(claim), field: value}
    signed = _post(client, "tiny-negative").data
    response = client.post("/v1/verify", data=signed, content_type="image/png")
    assert response.status_code == 200, response.data[:300]
    report = response.get_json()
    assert report["valid"] and not report["from_box"] and "model" not in report
    assert report["claim_problem"] == problem
    assert report["message"] == (f"signed, but its org.appliance.result claim is malformed "
                                 f"({problem}): not a result an appliance box made")
