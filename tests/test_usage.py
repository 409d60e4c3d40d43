"""GET /v1/usage and statements over HTTP, counting through the one admission path, daily
quotas (429 with Retry-After), a model's terms, and kill -9 of a real server while it
counts."""

import contextlib
import csv
import http.client
import io
import json
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from appliance import bundle as bundles
from appliance.api import create_app
from appliance.auth import Auth
from appliance.errors import TooManyRequests
from appliance.ledger import LEDGER_FILE, Ledger
from tests import models as tiny
from tests.conftest import ADMIN, image_bytes
from tests.test_admission import ROUTES, TOKEN
from tools.live_server import LiveServer, post_image

NOON = 1795867200.0  # 2026-11-28 12:00:00 UTC
AUTH = {"Authorization": f"Bearer {ADMIN}"}


def _infer(client, name="tiny-classify", headers=None):
    return client.post(f"/v1/models/{name}/infer", data={"image": (io.BytesIO(image_bytes()),
                                                                     "a.jpg")},
                       headers=headers or {})


def _fixed(services, now=NOON):
    services.ledger.clock = lambda: now


@pytest.mark.parametrize("path", ["/v1/usage", "/v1/usage/tiny-classify/statement"])
def test_usage_needs_the_admin_token(settings, services, path):
    settings.auth.infer_token = TOKEN
    services.auth = Auth(ADMIN, TOKEN)
    client = create_app(settings, services).test_client()
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer wrong-token-xxxxxxxx"}) \
        .status_code == 401
    assert client.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 403
    assert client.get(path, headers=AUTH).status_code == 200


def test_usage_counts_answers_and_failures_per_model_and_token(client, services):
    _fixed(services)
    assert _infer(client).status_code == 200
    assert _infer(client, headers=AUTH).status_code == 200
    bad = client.post("/v1/models/tiny-classify/infer", data=b"not a picture")
    assert bad.status_code == 415
    assert _infer(client, "no-such-model").status_code == 404  # no model: not in the ledger
    body = client.get("/v1/usage", headers=AUTH).get_json()
    assert body["recording"] is True and body["problem"] is None
    assert body["rows"] == [
        {"period": "2026-11-28", "model": "tiny-classify", "token": "admin", "answered": 1,
         "failed": 0},
        {"period": "2026-11-28", "model": "tiny-classify", "token": "none", "answered": 1,
         "failed": 1}]
    assert body["totals"] == {"tiny-classify": {"answered": 2, "failed": 1}}


def test_usage_filters_by_model_and_month_and_answers_csv(client, services):
    _fixed(services)
    _infer(client)
    _infer(client, "tiny-embed")
    only = client.get("/v1/usage?model=tiny-embed&month=2026-11", headers=AUTH).get_json()
    assert [r["model"] for r in only["rows"]] == ["tiny-embed"]
    assert client.get("/v1/usage?month=2026-10", headers=AUTH).get_json()["rows"] == []
    for response in (client.get("/v1/usage?format=csv", headers=AUTH),
                     client.get("/v1/usage", headers={**AUTH, "Accept": "text/csv"})):
        assert response.mimetype == "text/csv"
        rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
        assert [(r["model"], r["answered"]) for r in rows] == [("tiny-classify", "1"),
                                                               ("tiny-embed", "1")]


@pytest.mark.parametrize("query, words", [
    ("month=2026-13", "month '2026-13' is not a month: use YYYY-MM"),
    ("month=november", "month 'november' is not a month"),
    ("model=Bad%20Name", "model 'Bad Name' is not a model name"),
    ("format=xml", "format 'xml' is not one of json, csv"),
])
def test_bad_filters_are_400_naming_them(client, query, words):
    response = client.get(f"/v1/usage?{query}", headers=AUTH)
    assert response.status_code == 400
    assert words in response.get_json()["error"]["message"]


def test_a_statement_an_artist_can_be_sent(client, services):
    _fixed(services)
    for _ in range(3):
        _infer(client)
    response = client.get("/v1/usage/tiny-classify/statement?month=2026-11", headers=AUTH)
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert "Your model `tiny-classify` answered 3 requests on this box in November 2026." \
        in text
    assert "tiny-classify 0.0.1 by Test Author, CC0-1.0" in text
    empty = client.get("/v1/usage/tiny-classify/statement?month=2026-10", headers=AUTH)
    assert "answered 0 requests on this box in October 2026" in empty.get_data(as_text=True)
    assert client.get("/v1/usage/tiny-classify/statement?month=10-2026",
                      headers=AUTH).status_code == 400


def test_every_metered_route_counts_in_the_ledger(client, services):
    """Every route that runs a model goes through the admission path and is counted."""
    _fixed(services)
    expected: dict[str, int] = {}
    for method, path, keywords, model in ROUTES:
        if model is None:
            continue
        keywords = {k: ({f: (io.BytesIO(v[0]()), v[1]) for f, v in val.items()}
                        if k == "data" and isinstance(val, dict) else val)
                    for k, val in keywords.items()}
        response = client.open(path, method=method, **keywords)
        assert response.status_code == 200, (path, response.get_data(as_text=True))
        expected[model] = expected.get(model, 0) + 1
    totals = client.get("/v1/usage", headers=AUTH).get_json()["totals"]
    assert {m: t["answered"] for m, t in totals.items()} == expected


def test_a_spent_quota_is_429_with_retry_after_to_midnight(settings, models_dir, tmp_path):
    from appliance.services import Services

    settings.usage.quota_none = 2
    settings.usage.quota_infer = 1
    settings.auth.infer_token = TOKEN
    with Services.build(settings, admin=ADMIN) as services:
        services.start(background=False)
        _fixed(services, NOON + 3600)  # 13:00 UTC: 11 hours to midnight
        client = create_app(settings, services).test_client()
        token = {"Authorization": f"Bearer {TOKEN}"}
        assert _infer(client, headers=token).status_code == 200
        refused = _infer(client, headers=token)
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == str(11 * 3600)
        assert "daily quota of the 'infer' token is spent (1 requests a UTC day, setting " \
               "usage.quota_infer)" in refused.get_json()["error"]["message"]
        assert _infer(client, headers=AUTH).status_code == 200  # the owner has no quota
        rows = client.get("/v1/usage", headers=AUTH).get_json()["rows"]
        assert {r["token"]: r["answered"] for r in rows} == {"admin": 1, "infer": 1}
        _fixed(services, NOON + 12 * 3600)  # midnight: a new day
        assert _infer(client, headers=token).status_code == 200


def test_the_no_token_quota_over_http(settings, models_dir):
    from appliance.services import Services

    settings.usage.quota_none = 2
    with Services.build(settings, admin=ADMIN) as services:
        services.start(background=False)
        _fixed(services)
        client = create_app(settings, services).test_client()
        assert _infer(client, "no-such-model").status_code == 404  # runs nothing: free
        assert [_infer(client).status_code for _ in range(3)] == [200, 200, 429]
        assert _infer(client, headers=AUTH).status_code == 200


def test_row44_a_refused_request_is_not_in_the_ledger_nor_its_quota(settings, models_dir):
    """A 429 of a spent quota and a 401 of a model's terms are counted in /metrics, not in
    the ledger: not as the model's failed requests, nor (read back at a restart) toward the
    token's quota."""
    from appliance.services import Services

    tiny.write_bundle(models_dir, "members", "classify", terms={"requires_token": True})
    settings.usage.quota_infer = 1
    settings.auth.infer_token = TOKEN
    token = {"Authorization": f"Bearer {TOKEN}"}
    with Services.build(settings, admin=ADMIN) as services:
        services.start(background=False)
        _fixed(services)
        client = create_app(settings, services).test_client()
        assert _infer(client, headers=token).status_code == 200
        assert _infer(client, headers=token).status_code == 429
        assert _infer(client, "members", headers=token).status_code == 429  # quota first
        services.auth.infer_token = None  # the box opens: no token is 'none'
        assert _infer(client, "members").status_code == 401
        rows = client.get("/v1/usage", headers=AUTH).get_json()["rows"]
        assert [(r["model"], r["token"], r["answered"], r["failed"]) for r in rows] == [
            ("tiny-classify", "infer", 1, 0)]
        metrics = client.get("/metrics", headers=AUTH).get_data(as_text=True)
        assert 'model="tiny-classify",status="429"} 1' in metrics
        assert 'model="members",status="401"} 1' in metrics
    with Ledger(settings.state.dir, clock=lambda: NOON, quotas={"infer": 2}) as again:
        again.admit("infer")  # 1 of 2 used before the restart: this is the second
        with pytest.raises(TooManyRequests):
            again.admit("infer")


def test_a_model_whose_terms_require_a_token(settings, services, models_dir):
    tiny.write_bundle(models_dir, "members", "classify", terms={"requires_token": True})
    services.registry.load_all()
    client = create_app(settings, services).test_client()
    refused = _infer(client, "members")
    assert refused.status_code == 401
    assert "model members answers only with a token (its terms: requires_token)" in \
        refused.get_json()["error"]["message"]
    assert _infer(client, "members", headers=AUTH).status_code == 200
    assert _infer(client).status_code == 200  # the others stay open
    listed = {m["name"]: m for m in client.get("/v1/models").get_json()["models"]}
    assert listed["members"]["terms"] == {"requires_token": True}


def test_an_unknown_term_refuses_the_bundle_naming_it(tmp_path, client):
    with pytest.raises(bundles.BundleError, match=r"manifest.json.terms.pay_per_use: unknown "
                                                  r"field \(known: requires_token\)"):
        tiny.write_bundle(tmp_path / "m", "pricey", terms={"pay_per_use": 0.01})
        bundles.read(tmp_path / "m" / "pricey")
    with pytest.raises(bundles.BundleError, match="terms.requires_token: must be true or false"):
        bundles.parse_manifest(tiny.manifest("x", "classify", terms={"requires_token": "yes"}))


def test_an_unknown_term_is_refused_at_install_over_http(tmp_path, client):
    import tarfile

    folder = tmp_path / "src"
    found = tiny.write_bundle(folder, "pricey")
    manifest = json.loads((found.path / "manifest.json").read_text())
    manifest["terms"] = {"pay_per_use": 0.01}
    (found.path / "manifest.json").write_text(json.dumps(manifest))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(found.path, arcname="pricey")
    response = client.put("/v1/models/pricey", data=buffer.getvalue(), headers=AUTH)
    assert response.status_code == 422
    assert "terms.pay_per_use: unknown field" in response.get_json()["error"]["message"]


def test_readyz_says_when_the_ledger_is_not_recording(client, services):
    services.ledger.problem = "cannot open /x/usage.db: attempt to write a readonly database"
    body = client.get("/readyz").get_json()
    assert body["usage"] == {"recording": False, "problem": services.ledger.problem}


def test_a_read_only_state_folder_serves_and_reports_it(tmpfs, models_dir):
    from appliance import config
    from appliance.services import Services

    folder = tmpfs("ro,size=1m")
    settings = config.load(env={}, overrides={"models.dir": str(models_dir),
                                              "state.dir": str(folder)})
    with Services.build(settings, admin=ADMIN) as services:
        services.start(background=False)
        client = create_app(settings, services).test_client()
        assert _infer(client).status_code == 200
        body = client.get("/v1/usage", headers=AUTH).get_json()
        assert body["recording"] is False and "cannot open" in body["problem"]
        assert body["totals"] == {"tiny-classify": {"answered": 1, "failed": 0}}


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(3))
def test_kill_9_while_counting_loses_at_most_the_last_batch(models_dir, tmp_path, round_):
    """A real server counting a stream of requests is killed with SIGKILL at a moment set
    by the stream (after 40 + 25 x round answers); its ledger opens whole, and holds every
    answer the server had written before its last batch, never more than it answered."""
    state = tmp_path / "state"
    live = LiveServer(models_dir, state, env={"APPLIANCE_USAGE_FLUSH_S": "0.1",
                                              "APPLIANCE_AUTH_RATE_PER_MINUTE": "0"})
    live.wait_ready()
    url = f"{live.url}/v1/models/tiny-classify/infer"
    answered, stop = [0], threading.Event()

    def hammer():
        while not stop.is_set():
            try:
                status = post_image(url, image_bytes())[0]
            except (http.client.HTTPException, OSError):  # the answer cut by the kill
                return
            answered[0] += status == 200

    workers = [threading.Thread(target=hammer) for _ in range(3)]
    for w in workers:
        w.start()
    # Batches on disk first: the kill then falls between or inside writes. (The polls only
    # guard against a hang; nothing is timed.)
    written = _poll(lambda: _written(state) >= 20 and _written(state))
    _poll(lambda: answered[0] >= 40 + 25 * round_)
    live.stop(signal.SIGKILL)
    stop.set()
    for w in workers:
        w.join(30)
    with contextlib.closing(sqlite3.connect(state / LEDGER_FILE)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    after = _written(state)
    assert written <= after <= answered[0] + len(workers)  # a request answered as killed
    with Ledger(state) as book:  # and the box's own code opens it without moving it aside
        assert book.status()["recording"]
        assert sum(r.answered for r in book.rows("tiny-classify")) == after
    assert not list(state.glob(f"{LEDGER_FILE}.broken-*"))


def _poll(ready, tries: int = 6000):
    for _ in range(tries):
        found = ready()
        if found:
            return found
        time.sleep(0.005)
    raise AssertionError("the server never got there")


def _written(state) -> int:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{state / LEDGER_FILE}?mode=ro",
                                                uri=True)) as db:
            found = db.execute("SELECT sum(answered) FROM usage").fetchone()[0]
    except sqlite3.Error:  # not created yet
        return 0
    return found or 0



def test_usage_enabled_false_counts_nothing_and_says_so(settings, models_dir):
    from appliance.services import Services

    settings.usage.enabled = False
    settings.usage.quota_none = 1  # no ledger, no quota
    with Services.build(settings, admin=ADMIN) as services:
        services.start(background=False)
        client = create_app(settings, services).test_client()
        assert [_infer(client).status_code for _ in range(2)] == [200, 200]
        off = client.get("/v1/usage", headers=AUTH)
        assert off.status_code == 503
        assert "the usage ledger is off on this box" in off.get_json()["error"]["message"]
    assert not (Path(settings.state.dir) / LEDGER_FILE).exists()


@pytest.mark.slow
def test_a_body_to_the_usage_routes_is_refused_at_its_headers(models_dir, tmp_path):
    """GET /v1/usage and statements take no body: the small cap (appliance/api/limits.py),
    checked by the real server before a byte is read."""
    from appliance.api.limits import SMALL_BYTES
    from tools.live_server import request

    with LiveServer(models_dir, tmp_path / "state") as live:
        live.wait_ready()
        for path in ("/v1/usage", "/v1/usage/tiny-classify/statement"):
            status, body, _ = request("GET", live.url + path, b"x" * (SMALL_BYTES + 1),
                                      {**AUTH, "Content-Type": "application/octet-stream"})
            assert status == 413, path
            assert b"takes no request body larger than 16 KB" in body
