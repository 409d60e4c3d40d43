"""A fleet: two boxes found over mDNS on loopback, an nginx configuration generated from
them, and Debian's nginx (started by the test) sharing requests between them."""

import re
import shutil
import subprocess
import time

import pytest

from appliance import cli
from appliance.discovery import Box
from appliance.fleet import nginx_config
from tests.conftest import image_bytes
from tools.live_server import LiveServer, free_port, get, post_image

LOOPBACK = "127.0.0.1"


def test_config_lists_every_box():
    text = nginx_config([Box("a", "10.0.0.2", 8080, "/v1", "0.1", ""),
                         Box("b", "10.0.0.3", 8081, "/v1", "0.1", "")], listen="9000")
    assert "server 10.0.0.2:8080 max_fails=2 fail_timeout=10s;  # a" in text
    assert "server 10.0.0.3:8081" in text and "listen 9000;" in text
    assert "proxy_next_upstream error timeout http_503;" in text
    with pytest.raises(ValueError, match="no boxes"):
        nginx_config([])




@pytest.mark.slow
def test_two_boxes_behind_the_generated_nginx(models_dir, tmp_path, capsys):
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if nginx is None:
        pytest.skip("needs Debian's nginx package (apt-get install nginx-light)")
    boxes = []
    try:
        for name in ("box-one", "box-two"):
            env = {"APPLIANCE_DISCOVERY_ENABLED": "true", "APPLIANCE_DISCOVERY_NAME": name,
                   "APPLIANCE_DISCOVERY_INTERFACES": LOOPBACK,
                   "APPLIANCE_AUTH_RATE_PER_MINUTE": "0"}
            live = LiveServer(models_dir, tmp_path / name, env=env)
            live.wait_ready()
            boxes.append(live)
        port = free_port()
        conf = tmp_path / "fleet.conf"
        for _ in range(3):
            cli.main(["fleet", "--timeout", "2", "--interfaces", LOOPBACK, "--listen",
                      f"{LOOPBACK}:{port}", "--output", str(conf)])
            found = re.findall(r"# (box-\w+)", conf.read_text()) if conf.exists() else []
            if {"box-one", "box-two"} <= set(found):
                break
        assert {"box-one", "box-two"} <= set(found), capsys.readouterr().out
        _run_nginx(nginx, tmp_path, conf, port, boxes)
    finally:
        for live in boxes:
            live.stop()


def _run_nginx(nginx, tmp_path, conf, port, boxes):
    main = tmp_path / "nginx.conf"
    main.write_text(f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
                    "daemon off;\nevents {}\nhttp {\n"
                    f"  access_log off;\n  client_body_temp_path {tmp_path}/body;\n"
                    f"  proxy_temp_path {tmp_path}/proxy;\n  include {conf};\n}}\n")
    process = subprocess.Popen([nginx, "-c", str(main), "-p", str(tmp_path)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://{LOOPBACK}:{port}"
        deadline = time.monotonic() + 10
        while get(url + "/healthz")[0] != 200:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        for _ in range(20):
            assert post_image(f"{url}/v1/models/tiny-classify/infer", image_bytes())[0] == 200
        served = [_answered(live) for live in boxes]
        assert all(count > 0 for count in served) and sum(served) == 20, served
    finally:
        process.terminate()
        process.wait(10)
        process.stdout.close()


def _answered(live) -> int:
    text = get(live.url + "/metrics")[1].decode()
    found = re.search(r'appliance_requests_total\{model="tiny-classify",status="200"\} (\d+)',
                      text)
    return int(found.group(1)) if found else 0
