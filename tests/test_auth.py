import stat

import pytest

from appliance.auth import Auth, admin_token
from appliance.errors import Forbidden, Unauthorized


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
