import stat

import pytest

from appliance.auth import Auth, admin_token
from appliance.errors import ConfigError, Forbidden, Unauthorized


def test_admin_token_required():
    auth = Auth("secret")
    auth.require_admin("Bearer secret")
    with pytest.raises(Unauthorized, match="needs the admin token") as caught:
        auth.require_admin(None)
    assert caught.value.headers["WWW-Authenticate"].startswith("Bearer")
    with pytest.raises(Unauthorized, match="wrong token"):
        auth.require_admin("Bearer nope")
    with pytest.raises(Unauthorized):
        auth.require_admin("Basic secret")


def test_inference_token_on_admin_route_is_forbidden():
    auth = Auth("secret", infer_token="viewer")
    with pytest.raises(Forbidden, match="inference token cannot change the box"):
        auth.require_admin("Bearer viewer")


def test_inference_open_unless_configured():
    Auth("secret").require_infer(None)
    auth = Auth("secret", infer_token="viewer")
    assert auth.infer_required
    auth.require_infer("Bearer viewer")
    auth.require_infer("bearer secret")
    with pytest.raises(Unauthorized, match="needs the inference token"):
        auth.require_infer("Bearer wrong")


def test_admin_token_created_once_with_mode_0600(tmp_path):
    token = admin_token(tmp_path)
    path = tmp_path / "admin-token"
    assert len(token) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert admin_token(tmp_path) == token


def test_row39_an_admin_token_readable_by_others_is_made_private(tmp_path, caplog):
    path = tmp_path / "admin-token"
    path.write_text("a-token-long-enough-to-keep\n")
    path.chmod(0o644)
    assert admin_token(tmp_path) == "a-token-long-enough-to-keep"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "was readable by others (mode 644): it is now 0600" in caplog.text


def test_row39_a_short_admin_token_is_refused(tmp_path):
    (tmp_path / "admin-token").write_text("123456789\n")
    with pytest.raises(ConfigError, match="has 9 characters; at least 16 are needed to be "
                       "safe: delete the file and restart"):
        admin_token(tmp_path)


@pytest.mark.slow
def test_row39_the_server_does_not_start_with_a_short_admin_token(models_dir, tmp_path):
    from tools.live_server import LiveServer

    state = tmp_path / "state"
    state.mkdir()
    (state / "admin-token").write_text("123456789\n")
    with pytest.raises(RuntimeError, match="at least 16 are needed"):
        LiveServer(models_dir, state)
