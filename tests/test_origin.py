"""Row 35: pages of other sites and DNS rebinding get 403; the box's own names, addresses,
pages and non-browser clients are served."""

import socket

import pytest

from appliance import config
from appliance.api.origin import check_origin, host_allowed, hostname_of
from appliance.errors import Forbidden
from appliance.hardware.cameras import PushCamera
from tests.conftest import image_bytes

EVIL = "http://evil.example"


@pytest.fixture
def defaults():
    return config.load(env={})


@pytest.mark.parametrize("host", ["127.0.0.1:8080", "192.168.1.20", "[::1]:8080", "[fe80::1]",
                                  "localhost:8080", "LOCALHOST", "box.localhost"])
def test_addresses_and_localhost_are_allowed(defaults, host):
    assert host_allowed(host, defaults)


def test_the_host_name_and_its_mdns_name_are_allowed(defaults):
    short = socket.gethostname().split(".")[0]
    assert host_allowed(f"{short}.local:8080", defaults)
    assert host_allowed(short, defaults)
    defaults.discovery.name = "gallery"
    assert host_allowed("gallery.local", defaults)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.1.evil.example",
                                  "appliance.local.evil.example"])
def test_other_names_are_refused(defaults, host):
    assert not host_allowed(host, defaults)


def test_allowed_hosts_adds_names_and_star_allows_any(defaults):
    defaults.server.allowed_hosts = "fleet.example, Box.Lan."
    assert host_allowed("fleet.example:8080", defaults)
    assert host_allowed("box.lan", defaults)
    assert not host_allowed("evil.example", defaults)
    defaults.server.allowed_hosts = "*"
    assert host_allowed("evil.example", defaults)


def test_hostname_of_strips_ports_and_brackets():
    assert hostname_of("Box.Local.:8080") == "box.local"
    assert hostname_of("[::1]:80") == "::1"
    assert hostname_of("::1") == "::1"


@pytest.mark.parametrize("headers", [
    {"Host": "localhost:8080", "Origin": EVIL},
    {"Host": "localhost:8080", "Origin": "null"},
    {"Host": "localhost:8080", "Origin": "http://localhost:9999"},
    {"Host": "localhost:8080", "Origin": "https://localhost"},
    {"Host": "localhost:8080", "Sec-Fetch-Site": "cross-site"},
    {"Host": "localhost:8080", "Sec-Fetch-Site": "same-site"},
    {"Host": "evil.example:8080", "Origin": "http://evil.example:8080"},
])
def test_other_origins_are_refused(defaults, headers):
    with pytest.raises(Forbidden):
        check_origin(headers, defaults)


@pytest.mark.parametrize("headers", [
    {"Host": "localhost:8080"},
    {"Host": "localhost:8080", "Origin": "http://localhost:8080"},
    {"Host": "localhost", "Origin": "http://localhost"},
    {"Host": "[::1]:8080", "Origin": "http://[::1]:8080"},
    {"Host": "10.0.0.5:8080", "Sec-Fetch-Site": "same-origin"},
    {"Host": "10.0.0.5:8080", "Sec-Fetch-Site": "none"},
    {},
])
def test_same_origin_and_programs_are_served(defaults, headers):
    check_origin(headers, defaults)


def test_row35_a_cross_site_post_never_reaches_the_model_or_the_screen(client, services):
    services.push_camera = PushCamera(budget=services.decodes)  # what goes on the screen
    response = client.post("/v1/infer", data=image_bytes(), content_type="text/plain",
                           headers={"Origin": EVIL})
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"
    assert "another site" in response.get_json()["error"]["message"]
    assert services.push_camera.read() is None
    ok = client.post("/v1/infer", data=image_bytes(), content_type="image/jpeg",
                     headers={"Origin": "http://localhost"})
    assert ok.status_code == 200 and services.push_camera.read()[0] == 1


@pytest.mark.parametrize("path", ["/v1/models", "/", "/metrics", "/v2/models/tiny-classify",
                                  "/v1/kiosk/frame.jpg"])
def test_row35_dns_rebinding_reads_nothing(client, path):
    response = client.get(path, headers={"Host": "evil.example:8080"})
    assert response.status_code == 403
    assert "server.allowed_hosts" in response.get_data(as_text=True)


def test_row35_v2_answers_refusals_in_its_own_format(client):
    response = client.post("/v2/models/tiny-classify/infer", data=b"{}",
                           content_type="application/json", headers={"Origin": EVIL})
    assert response.status_code == 403
    assert "another site" in response.get_json()["error"]


def test_row35_behind_a_proxy_that_drops_the_port_the_page_still_posts(defaults):
    defaults.server.allowed_hosts = "gallery.local"
    check_origin({"Host": "gallery.local", "Origin": "http://gallery.local:8080"}, defaults)
    with pytest.raises(Forbidden):
        check_origin({"Host": "gallery.local", "Origin": "http://evil.example:8080"}, defaults)
