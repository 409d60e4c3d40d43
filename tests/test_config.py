import pytest

from appliance import config
from appliance.errors import ConfigError


def test_defaults_without_file_or_env():
    settings = config.load(env={})
    assert settings.server.host == "0.0.0.0"
    assert settings.server.port == 8080
    assert settings.models.providers == "auto"


def test_toml_then_env_then_flags_later_wins(tmp_path):
    path = tmp_path / "appliance.toml"
    path.write_text('[server]\nport = 9000\nhost = "127.0.0.1"\n[models]\nqueue_size = 4\n')
    settings = config.load(path, env={"APPLIANCE_SERVER_PORT": "9100"},
                           overrides={"server.host": "::1", "server.threads": None})
    assert settings.server.port == 9100
    assert settings.server.host == "::1"
    assert settings.models.queue_size == 4
    assert settings.server.threads == 8


def test_env_keys_with_underscores():
    settings = config.load(env={"APPLIANCE_MODELS_INTRA_OP_THREADS": "3",
                                "APPLIANCE_MODELS_WARMUP": "off"})
    assert settings.models.intra_op_threads == 3
    assert settings.models.warmup is False


def test_unknown_toml_key_names_its_path(tmp_path):
    path = tmp_path / "appliance.toml"
    path.write_text("[server]\nprot = 1\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'server.prot' \(config file\)"):
        config.load(path, env={})


def test_unknown_section(tmp_path):
    path = tmp_path / "appliance.toml"
    path.write_text("[sever]\nport = 1\n")
    with pytest.raises(ConfigError, match="unknown setting 'sever.port'"):
        config.load(path, env={})


def test_unknown_env_variable_is_refused():
    with pytest.raises(ConfigError, match="APPLIANCE_SERVER_PROT"):
        config.load(env={"APPLIANCE_SERVER_PROT": "1"})
    with pytest.raises(ConfigError, match="unknown environment variable APPLIANCE_NOPE"):
        config.load(env={"APPLIANCE_NOPE": "1"})


def test_wrong_types_are_refused(tmp_path):
    path = tmp_path / "appliance.toml"
    path.write_text('[server]\nport = "eighty"\n')
    with pytest.raises(ConfigError, match="'server.port' .* must be int, got str 'eighty'"):
        config.load(path, env={})
    with pytest.raises(ConfigError, match="'server.port' .* must be int, got 'x'"):
        config.load(env={"APPLIANCE_SERVER_PORT": "x"})
    with pytest.raises(ConfigError, match="must be bool"):
        config.load(env={"APPLIANCE_MODELS_WARMUP": "maybe"})


def test_integer_accepted_for_float(tmp_path):
    path = tmp_path / "appliance.toml"
    path.write_text("[server]\nmax_upload_mb = 5\n")
    assert config.load(path, env={}).server.max_upload_mb == 5.0


def test_ranges_are_checked():
    with pytest.raises(ConfigError, match="'server.port' must be between 0 and 65535"):
        config.load(env={"APPLIANCE_SERVER_PORT": "70000"})
    with pytest.raises(ConfigError, match="'models.queue_size' must be at least 1"):
        config.load(env={"APPLIANCE_MODELS_QUEUE_SIZE": "0"})
    with pytest.raises(ConfigError, match="'server.max_receiving_mb' must be at least "
                       "server.max_upload_mb"):
        config.load(env={"APPLIANCE_SERVER_MAX_RECEIVING_MB": "19"})
    with pytest.raises(ConfigError, match="'server.max_waiting' must be at least 1"):
        config.load(env={"APPLIANCE_SERVER_MAX_WAITING": "0"})  # 0 would shed every request
    with pytest.raises(ConfigError, match="'server.body_timeout_s' must be at least 1"):
        config.load(env={"APPLIANCE_SERVER_BODY_TIMEOUT_S": "0.5"})


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "nope.toml", env={})
    broken = tmp_path / "broken.toml"
    broken.write_text("[server\n")
    with pytest.raises(ConfigError, match="cannot be read"):
        config.load(broken, env={})
    flat = tmp_path / "flat.toml"
    flat.write_text("port = 1\n")
    with pytest.raises(ConfigError, match="'port' must be a \\[section\\] table"):
        config.load(flat, env={})


def test_to_toml_round_trips(tmp_path):
    settings = config.load(env={"APPLIANCE_AUTH_INFER_TOKEN": 'a-long-token-with-a-quote"d'})
    path = tmp_path / "out.toml"
    path.write_text(config.to_toml(settings))
    assert config.load(path, env={}) == settings


def test_every_setting_is_documented_in_the_readme():
    readme = (config.CHECKOUT / "README.md").read_text()
    for key, _kind, _default, help_text in config.describe():
        assert help_text, f"{key} has no help text"
        assert f"`{key}`" in readme, f"README.md does not document {key}"


def test_hardware_names_and_paths_are_checked():
    with pytest.raises(ConfigError, match="'camera.kind': 'webcam' is not one of none, folder"):
        config.load(env={"APPLIANCE_CAMERA_KIND": "webcam"})
    with pytest.raises(ConfigError, match="'display.path': display framebuffer needs a path"):
        config.load(env={"APPLIANCE_DISPLAY_KIND": "framebuffer"})
    with pytest.raises(ConfigError, match="'buttons.capture': BCM pin 40 does not exist"):
        config.load(env={"APPLIANCE_BUTTONS_CAPTURE": "40"})


@pytest.mark.parametrize("token, problem", [("short", "5 characters"),
                                            ("sixteen chars ok", "spaces")])
def test_row39_a_weak_inference_token_is_refused(token, problem):
    with pytest.raises(ConfigError, match=problem):
        config.load(env={"APPLIANCE_AUTH_INFER_TOKEN": token})
