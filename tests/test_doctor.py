"""`appliance doctor` on this machine, with absent and forbidden devices faked."""

import socket

from appliance import cli, config, doctor


def test_cpu_features(tmp_path):
    (tmp_path / "cpuinfo").write_text("flags\t: fpu avx2 avx512_vnni\n")
    assert "x86 with VNNI" in doctor.cpu(tmp_path).detail
    (tmp_path / "cpuinfo").write_text("Features\t: fp asimd asimddp\n")
    assert "arm64 with dot product" in doctor.cpu(tmp_path).detail
    (tmp_path / "cpuinfo").write_text("flags\t: fpu\n")
    assert doctor.cpu(tmp_path).level == doctor.WARN


def test_devices_absent_and_forbidden(tmp_path):
    missing = doctor.devices(tmp_path, "video*", "camera", True, "video")
    assert missing.level == doctor.FAIL and "no " in missing.detail
    assert doctor.devices(tmp_path, "video*", "camera", False, "video").level == doctor.OK
    node = tmp_path / "video0"
    node.write_text("")
    node.chmod(0o000)
    forbidden = doctor.devices(tmp_path, "video*", "camera", True, "video")
    if forbidden.level == doctor.OK:  # root reads anything: the permission case needs a user
        assert forbidden.detail == str(node)
    else:
        assert "usermod -aG video" in forbidden.fix


def test_port_in_use_blocks(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        finding = doctor.port("127.0.0.1", taken.getsockname()[1])
    assert finding.level == doctor.FAIL and "ss -ltnp" in finding.fix


def test_clock_and_report():
    assert doctor.clock(0).level == doctor.WARN
    text, code = doctor.report([doctor.Finding(doctor.FAIL, "x", "broken", "fix it")])
    assert code == 1 and "fix: fix it" in text and "1 problem(s) block serving" in text


def test_doctor_command(models_dir, tmp_path, capsys):
    assert cli.main(["doctor", "--models-dir", str(models_dir)]) in (0, 1)
    out = capsys.readouterr().out
    assert "ok   model tiny-classify: checksum and load ok" in out
    (models_dir / "tiny-faces").rename(models_dir / "faces")  # the server refuses it too
    cli.main(["doctor", "--models-dir", str(models_dir)])
    assert "model faces: faces/manifest.json.name: is 'tiny-faces'" in capsys.readouterr().out
    for folder in models_dir.iterdir():
        (folder / "model.onnx").write_bytes(b"broken")
    settings = config.load(env={}, overrides={"models.dir": str(models_dir),
                                              "state.dir": str(tmp_path / "s"),
                                              "server.port": 0})
    text, code = doctor.report(doctor.examine(settings, dev=tmp_path, proc=tmp_path))
    assert code == 1 and "FAIL models: no bundle in" in text
