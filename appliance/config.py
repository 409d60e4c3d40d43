"""Typed settings: defaults in code, then a TOML file, then `APPLIANCE_*` environment variables,
then CLI flags, later winning.

Every setting is declared once here with its default and help text; the names are a public
interface (systemd units, docs and people's scripts use them). Unknown keys are refused with
their key path, so a typo fails loudly.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.auth import check_token
from appliance.errors import ConfigError

CHECKOUT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_FILE = Path("/etc/appliance/appliance.toml")
ENV_PREFIX = "APPLIANCE_"


def _in_checkout() -> bool:
    return (CHECKOUT / "pyproject.toml").is_file() and (CHECKOUT / "models").is_dir()


def _default_models_dir() -> str:
    return str(CHECKOUT / "models") if _in_checkout() else "/var/lib/appliance/models"


def _default_state_dir() -> str:
    return str(CHECKOUT / "state") if _in_checkout() else "/var/lib/appliance"


def setting(default: Any = None, help: str = "", factory: Any = None, shown: str = "") -> Any:
    """Declare one setting with its default and the help text the docs show; `shown` says
    how the docs show a default that depends on the machine (made by `factory`)."""
    metadata = {"help": help, "shown": shown}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class Server:
    host: str = setting("0.0.0.0", "bind address; flag --host")
    port: int = setting(8080, "TCP port; flag --port")
    threads: int = setting(8, "WSGI worker threads (requests handled at once)")
    max_waiting: int = setting(16, "requests waiting for a worker thread before more are "
                               "answered 503 at once with Retry-After (a request behind "
                               "more would only wait longer for the model); independent "
                               "of server.threads")
    max_upload_mb: float = setting(20.0, "largest request body accepted, in MB (larger: 413)")
    max_receiving_mb: float = setting(100.0, "request bodies held at once from clients "
                                      "that send no token in their headers, all together, "
                                      "in MB, counted as they arrive; more wait for a 503 "
                                      "with Retry-After. One client address holds at most a "
                                      "quarter (429 past it; behind a reverse proxy every "
                                      "client is the proxy). At least server.max_upload_mb")
    body_timeout_s: float = setting(120.0, "longest a request body may take to arrive, from "
                                    "its headers (the connection is closed after it): a "
                                    "stranger's upload cannot hold the box's receiving "
                                    "budget for long")
    max_streams: int = setting(2, "most live event streams (/v1/events, the kiosk page) open "
                               "at once, each holding a worker thread; more get 503. At "
                               "most half of server.threads are ever used")
    allowed_hosts: str = setting("", "more names the box answers to (comma separated), such "
                                 "as a name behind a proxy; * for any. IP addresses, "
                                 "localhost, the host name and NAME.local always work")


@dataclass
class Models:
    dir: str = setting(help="where bundles live; flag --models-dir", factory=_default_models_dir,
                       shown="models/ in a checkout, else /var/lib/appliance/models")
    active: str = setting("", "the active model (used by /v1/infer); empty: the first by name")
    providers: str = setting(
        "auto", "onnxruntime execution providers: auto (TensorRT, CUDA when present, else CPU), or"
                " cpu, cuda, tensorrt comma separated"
    )
    intra_op_threads: int = setting(0, "onnxruntime threads per plain session; 0: 1 with the "
                                    "idle session, else the cores shared out")
    sessions: int = setting(0, "plain onnxruntime sessions per model, each with its own "
                            "worker thread; 0: one 1-thread session run by a worker per core "
                            "with the idle session, else half the cores (at least 1)")
    spin: bool = setting(False, "let the sessions' threads spin between runs (they take CPU from "
                                "decoding and the web server under load: about 20% less throughput"
                                " on 2 cores)")
    idle_session: bool = setting(True, "one more session per model, on every core with spinning "
                                       "threads, for requests that find the model idle (the lowest"
                                       " latency one at a time; see Performance)")
    queue_size: int = setting(16, "requests waiting per model before 503 Busy")
    timeout_s: float = setting(30.0, "deadline of each request's model run: a run still going then"
                                     " is stopped (504, and the model's overruns in GET /v1/models"
                                     " counts it; after 3 it stops serving, listed as failed), a "
                                     "request still queued is dropped (503); also the limit of "
                                     "each install probe run")
    max_batch: int = setting(0, "most requests run as one batch, for models with a dynamic batch "
                                "dimension; 0: as each bundle's manifest says (serving.max_batch, "
                                "else 1)")
    max_wait_ms: float = setting(-1.0, "how long a batch waits for more requests; -1: as each "
                                       "bundle's manifest says (serving.max_wait_ms, else 0: a "
                                       "worker takes what is waiting and never waits)")
    warmup: bool = setting(True, "run one inference at load so the first request is fast")
    max_install_mb: int = setting(500, "largest bundle archive accepted by PUT, unpacked, in MB")
    probe_memory_mb: int = setting(512, "memory (RLIMIT_DATA) the install probe may allocate while"
                                        " it loads the model and runs it on zeros, a synthetic "
                                        "photograph, noise and a white image; over it, or past "
                                        "models.timeout_s on any of them: 422 with the reason. "
                                        "Keep it under the unit's MemoryMax=1G minus what the "
                                        "server holds (about 250 MB with the default models; they "
                                        "probe in 100-175 MB)")


@dataclass
class Imaging:
    max_pixels: int = setting(50_000_000, "largest image accepted, in pixels (larger: 413)")
    max_decode_mb: int = setting(256, "most memory one image's decode may hold, in MB, worked out "
                                      "from its header before any pixel is decoded: pixels times "
                                      "bytes per pixel of the decoded mode (1 for grey and "
                                      "palette, 2 for 16-bit grey, 4 for the rest), what the "
                                      "format's decoder keeps beside them (a progressive JPEG's "
                                      "coefficients, 12 more for WebP), a band of the conversion "
                                      "and the reduced result. More: 413 (save it as an 8-bit RGB "
                                      "JPEG or scale it down). A 50-megapixel RGB PNG takes about "
                                      "195, a 7000x7000 16-bit grey PNG 102, a JPEG decoded for a "
                                      "model a few")
    max_decoding_mb: int = setting(512, "most memory all decodes in flight may hold together, in "
                                        "MB; a decode that does not fit waits up to 10 s for its "
                                        "turn (first come first served), then 503 with "
                                        "Retry-After. With the server's own (about 250 MB with the"
                                        " default models) keep it under the unit's MemoryMax=1G; "
                                        "at least imaging.max_decode_mb")


@dataclass
class State:
    dir: str = setting(help="tokens, signing keys, the active model, the models' timing, "
                            "taught examples, the usage ledger and gallery captures",
                       factory=_default_state_dir,
                       shown="state/ in a checkout, else /var/lib/appliance")


@dataclass
class Auth:
    infer_token: str = setting("", "optional inference token; empty: inference is open")
    rate_per_minute: int = setting(1200, "inference requests a minute per client address (429 with"
                                         " Retry-After beyond); 0: no limit")
    burst: int = setting(60, "requests a client may send at once before the rate applies")


NO_PIN = -1


@dataclass
class Discovery:
    enabled: bool = setting(True, "announce the box with mDNS/DNS-SD (NAME.local)")
    name: str = setting("", "the name announced; empty: the host name")
    interfaces: str = setting("all", "all, or comma-separated IPv4 addresses to announce on")


@dataclass
class Standalone:
    enabled: bool = setting(False, "run the camera -> model -> screen loop beside the API; "
                            "flag --standalone")
    capture_s: float = setting(8.0, "how long a captured result stays on screen")
    idle_s: float = setting(60.0, "no change for this long: the attract screen")
    gallery_dir: str = setting("", "where captures are saved; empty: STATE_DIR/gallery")
    shutdown_command: str = setting("systemctl poweroff", "run when the shutdown buttons "
                                    "are held")
    hint: str = setting("Press the red button to keep your portrait",
                        "the one line shown to visitors while idle")
    max_fps: float = setting(15.0, "upper bound on frames per second of the loop")
    backdrop: str = setting("", "segment models: the picture (JPEG or PNG path) the cut-out "
                            "visitor is placed on; empty: a soft gradient")


@dataclass
class Camera:
    kind: str = setting("none", "none, folder, push, picamera2 or v4l2")
    path: str = setting("", "the folder (folder) or device (v4l2, e.g. /dev/video0)")
    interval_s: float = setting(3.0, "folder: seconds each picture is shown")
    width: int = setting(1280, "v4l2 and picamera2: capture width")
    height: int = setting(720, "v4l2 and picamera2: capture height")


@dataclass
class Display:
    kind: str = setting("none", "none, file, framebuffer, kiosk or luma")
    path: str = setting("", "file: output folder; framebuffer: device (/dev/fb0); "
                        "luma: driver:interface, e.g. ssd1306:i2c")
    width: int = setting(1920, "file: screen width in pixels; kiosk: the width until a "
                         "/kiosk page says its screen's, and with height the most pixels a "
                         "frame drawn for a page has")
    height: int = setting(1080, "file: screen height in pixels; kiosk: the height until a "
                          "/kiosk page says its screen's")
    keep_frames: int = setting(100, "file: how many frames to keep on disk")


@dataclass
class Buttons:
    next: int = setting(NO_PIN, "BCM pin of the next-model button; -1: none")
    previous: int = setting(NO_PIN, "BCM pin of the previous-model button; -1: none")
    capture: int = setting(NO_PIN, "BCM pin of the capture button; -1: none")
    shutdown: int = setting(NO_PIN, "BCM pin of a dedicated shutdown button; -1: hold next "
                            "and previous together instead")
    led: int = setting(NO_PIN, "BCM pin of the status LED; -1: none")
    bounce_ms: int = setting(30, "debounce time")
    hold_s: float = setting(3.0, "hold capture this long to switch auto/manual")
    shutdown_hold_s: float = setting(5.0, "hold the shutdown button(s) this long")


@dataclass
class Compat:
    detection_model: str = setting("objects", "the detect bundle behind DeepStack's "
                                   "/v1/vision/detection, DOODS's 'default' detector and "
                                   "Frigate's zmq detector")
    face_model: str = setting("faces", "the detect bundle behind DeepStack's /v1/vision/face")
    scene_model: str = setting("efficientnet-lite0", "the classify bundle behind DeepStack's "
                               "/v1/vision/scene")
    max_predictions: int = setting(20, "most predictions a DeepStack route answers, best "
                                   "first (Frigate's detector fails on a 21st)")
    zmq_endpoint: str = setting("", "Frigate's remote detector (type zmq) listens here, e.g. "
                                "tcp://0.0.0.0:5555; empty: off. Its protocol has no "
                                "token: see compat.zmq_allow")
    zmq_labelmap: str = setting("", "Frigate's labelmap file (lines 'ID NAME') the zmq "
                                "detector answers in; empty: Frigate's default COCO map")
    zmq_allow: str = setting("", "addresses that may use the zmq detector (comma "
                             "separated); empty: any. Frigate's protocol carries no token, so "
                             "this is required while auth.infer_token is set")


@dataclass
class Teach:
    embedder: str = setting("lite0-embed", "the embed bundle a new taught model learns "
                            "with (its graph is copied into the taught model)")
    max_examples: int = setting(1000, "most example photos one taught model keeps (more: "
                                "507)")
    max_classes: int = setting(100, "most classes one taught model has (more: 507)")
    threshold: float = setting(-1.0, "similarity under which a taught model answers 'none "
                               "of these' (0 to 1); -1: learnt from the examples' spread")
    unknown_label: str = setting("unknown", "the label a taught model answers for 'none "
                                 "of these'")
    author: str = setting("the owner of this box", "a new taught model's author when the "
                          "request names none (field author)")
    license: str = setting("LicenseRef-All-Rights-Reserved", "a new taught model's licence "
                           "when the request names none (field license)")
    wait_s: float = setting(10.0, "how long a change waits for the model's running fit "
                            "before answering 409")


@dataclass
class Provenance:
    enabled: bool = setting(True, "sign every picture the box makes with Content Credentials "
                            "(C2PA: model, authors, licence, input hash) using the box's key; "
                            "needs c2pa-python (the provenance extra)")
    key_file: str = setting("", "PEM private key results are signed with, with cert_file; "
                            "empty: the box's own, made in STATE/provenance on first start")
    cert_file: str = setting("", "PEM certificate chain of key_file, the key's own "
                             "certificate first")


@dataclass
class Usage:
    enabled: bool = setting(True, "keep the usage ledger (STATE/usage.db): requests per model, UTC"
                                  " day and token, for GET /v1/usage and statements; false: "
                                  "nothing is counted, no quota applies, and /v1/usage answers 503")
    flush_s: float = setting(5.0, "seconds between the ledger's writes to disk (0.1 to 3600): a "
                                  "power cut loses at most this much counting")
    keep_days: int = setting(92, "days kept day by day (at least 31); older days are rolled up "
                                 "into their month")
    quota_infer: int = setting(0, "requests a UTC day the inference token may make (429 with "
                                  "Retry-After to midnight beyond); 0: no limit")
    quota_none: int = setting(0, "requests a UTC day made without a token may make, all "
                              "together (429 with Retry-After beyond); 0: no limit")


@dataclass
class Settings:
    server: Server = field(default_factory=Server)
    models: Models = field(default_factory=Models)
    imaging: Imaging = field(default_factory=Imaging)
    state: State = field(default_factory=State)
    auth: Auth = field(default_factory=Auth)
    standalone: Standalone = field(default_factory=Standalone)
    camera: Camera = field(default_factory=Camera)
    display: Display = field(default_factory=Display)
    buttons: Buttons = field(default_factory=Buttons)
    discovery: Discovery = field(default_factory=Discovery)
    compat: Compat = field(default_factory=Compat)
    teach: Teach = field(default_factory=Teach)
    provenance: Provenance = field(default_factory=Provenance)
    usage: Usage = field(default_factory=Usage)


SECTIONS = tuple(f.name for f in dataclasses.fields(Settings))


def describe() -> list[tuple[str, str, Any, str]]:
    """Every setting as (key path, type name, default, help), for docs and `check-config`."""
    rows = []
    for section_name in SECTIONS:
        defaults = _section_class(section_name)()
        for f in dataclasses.fields(defaults):
            value = getattr(defaults, f.name)
            rows.append((f"{section_name}.{f.name}", type(value).__name__, value,
                         f.metadata["help"]))
    return rows


def shown_defaults() -> dict[str, str]:
    """How the docs show the defaults that depend on the machine, by key path."""
    return {f"{name}.{f.name}": f.metadata["shown"] for name in SECTIONS
            for f in dataclasses.fields(_section_class(name)) if f.metadata.get("shown")}


def toml_value(value: Any) -> str:
    """`value` as TOML writes it."""
    return _toml_value(value)


def load(
    path: str | os.PathLike | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the effective settings from defaults, a TOML file, the environment and overrides.

    `path` None means the default file when it exists. `overrides` are dotted keys from CLI
    flags (`{"server.port": 9000}`); None values are ignored.
    Raises ConfigError naming the file, variable or key path of any bad value.
    """
    settings = Settings()
    for key, value in _read_toml(path).items():
        _assign(settings, key, value, source="config file")
    environ = os.environ if env is None else env
    for key, value in _read_env(environ).items():
        _assign(settings, key, value, source=f"environment {_env_name(key)}", from_text=True)
    for key, value in (overrides or {}).items():
        if value is not None:
            _assign(settings, key, value, source="command line")
    _check_ranges(settings)
    return settings


def to_toml(settings: Settings) -> str:
    """Render effective settings as TOML text (what `check-config` prints)."""
    lines = []
    for section in dataclasses.fields(Settings):
        lines.append(f"[{section.name}]")
        values = getattr(settings, section.name)
        for f in dataclasses.fields(values):
            lines.append(f"{f.name} = {_toml_value(getattr(values, f.name))}")
        lines.append("")
    return "\n".join(lines)


def _section_class(name: str) -> type:
    return type(getattr(Settings(), name))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _read_toml(path: str | os.PathLike | None) -> dict[str, Any]:
    if path is None:
        if not DEFAULT_CONFIG_FILE.is_file():
            return {}
        path = DEFAULT_CONFIG_FILE
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist: create it or leave out "
                          "--config") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from exc
    flat = {}
    for section, values in data.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: '{section}' must be a [section] table, not a value")
        for key, value in values.items():
            flat[f"{section}.{key}"] = value
    return flat


def _read_env(environ: Mapping[str, str]) -> dict[str, str]:
    found = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX):].lower()
        section = next((s for s in SECTIONS if rest.startswith(s + "_")), None)
        if section is None:
            raise ConfigError(f"unknown environment variable {name}: sections are "
                              f"{', '.join(SECTIONS)} (APPLIANCE_SECTION_KEY)")
        found[f"{section}.{rest[len(section) + 1:]}"] = value
    return found


def _env_name(key: str) -> str:
    return ENV_PREFIX + key.replace(".", "_").upper()


def _assign(settings: Settings, key: str, value: Any, source: str,
            from_text: bool = False) -> None:
    section_name, _, name = key.partition(".")
    if section_name not in SECTIONS:
        raise ConfigError(f"unknown setting '{key}' ({source}): sections are {', '.join(SECTIONS)}")
    section = getattr(settings, section_name)
    fields = {f.name: f for f in dataclasses.fields(section)}
    if name not in fields:
        raise ConfigError(f"unknown setting '{key}' ({source}): "
                          f"known keys in [{section_name}] are {', '.join(fields)}")
    kind = type(getattr(_section_class(section_name)(), name))
    setattr(section, name, _coerce(key, value, kind, source, from_text))


def _coerce(key: str, value: Any, kind: type, source: str, from_text: bool) -> Any:
    if from_text:
        return _parse_text(key, str(value), kind, source)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not kind:
        raise ConfigError(f"setting '{key}' ({source}) must be {kind.__name__}, "
                          f"got {type(value).__name__} {value!r}")
    return value


def _parse_text(key: str, text: str, kind: type, source: str) -> Any:
    try:
        if kind is bool:
            lowered = text.strip().lower()
            if lowered not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                raise ValueError(text)
            return lowered in {"1", "true", "yes", "on"}
        return kind(text)
    except ValueError:
        raise ConfigError(f"setting '{key}' ({source}) must be {kind.__name__}, "
                          f"got {text!r}") from None


def _check_ranges(settings: Settings) -> None:
    checks = [
        ("server.port", 0 <= settings.server.port <= 65535, "between 0 and 65535"),
        ("server.threads", settings.server.threads >= 1, "at least 1"),
        ("server.max_waiting", settings.server.max_waiting >= 1, "at least 1"),
        ("server.max_upload_mb", settings.server.max_upload_mb > 0, "above 0"),
        ("server.body_timeout_s", settings.server.body_timeout_s >= 1, "at least 1"),
        ("server.max_receiving_mb",
         settings.server.max_receiving_mb >= settings.server.max_upload_mb,
         "at least server.max_upload_mb"),
        ("server.max_streams", settings.server.max_streams >= 0, "0 or more"),
        ("models.intra_op_threads", settings.models.intra_op_threads >= 0, "0 or more"),
        ("models.queue_size", settings.models.queue_size >= 1, "at least 1"),
        ("models.timeout_s", settings.models.timeout_s > 0, "above 0"),
        ("models.max_batch", settings.models.max_batch >= 0, "0 or more"),
        ("models.sessions", 0 <= settings.models.sessions <= 64, "0 to 64"),
        ("models.max_wait_ms", settings.models.max_wait_ms >= 0
         or settings.models.max_wait_ms == -1, "-1, 0 or more"),
        ("models.max_install_mb", settings.models.max_install_mb >= 0, "0 or more"),
        ("models.probe_memory_mb", settings.models.probe_memory_mb >= 64, "at least 64"),
        ("auth.rate_per_minute", settings.auth.rate_per_minute >= 0, "0 or more"),
        ("auth.burst", settings.auth.burst >= 1, "at least 1"),
        ("imaging.max_pixels", settings.imaging.max_pixels >= 1, "at least 1"),
        ("imaging.max_decode_mb", settings.imaging.max_decode_mb >= 1, "at least 1"),
        ("imaging.max_decoding_mb",
         settings.imaging.max_decoding_mb >= settings.imaging.max_decode_mb,
         "at least imaging.max_decode_mb"),
        ("standalone.max_fps", settings.standalone.max_fps > 0, "above 0"),
        ("display.width", settings.display.width >= 16, "at least 16"),
        ("display.height", settings.display.height >= 16, "at least 16"),
        ("teach.max_examples", settings.teach.max_examples >= 1, "at least 1"),
        ("teach.max_classes", 2 <= settings.teach.max_classes <= 1000, "2 to 1000"),
        ("teach.threshold", settings.teach.threshold == -1
         or 0 <= settings.teach.threshold <= 1, "-1, or 0 to 1"),
        ("teach.unknown_label", 1 <= len(settings.teach.unknown_label) <= 64
         and "/" not in settings.teach.unknown_label, "1-64 characters without '/'"),
        ("teach.wait_s", settings.teach.wait_s >= 0, "0 or more"),
        ("usage.flush_s", 0.1 <= settings.usage.flush_s <= 3600, "0.1 to 3600"),
        ("usage.keep_days", settings.usage.keep_days >= 31, "at least 31"),
        ("usage.quota_infer", settings.usage.quota_infer >= 0, "0 or more"),
        ("usage.quota_none", settings.usage.quota_none >= 0, "0 or more"),
        ("compat.max_predictions", 1 <= settings.compat.max_predictions <= 1000,
         "1 to 1000"),
    ]
    for key, ok, rule in checks:
        if not ok:
            raise ConfigError(f"setting '{key}' must be {rule}")
    _check_hardware(settings)
    _check_infer_token(settings.auth.infer_token)
    _check_zmq(settings)


def _check_zmq(settings: Settings) -> None:
    compat = settings.compat
    if compat.zmq_endpoint and settings.auth.infer_token and not compat.zmq_allow.strip():
        raise ConfigError("setting 'compat.zmq_allow': Frigate's zmq detector sends no token, "
                          "so with auth.infer_token set the box needs the addresses allowed "
                          "to use it (e.g. the Frigate machine's IP address)")
    if compat.zmq_endpoint and not compat.zmq_endpoint.startswith("tcp://"):
        raise ConfigError(f"setting 'compat.zmq_endpoint': {compat.zmq_endpoint!r} is not a "
                          "tcp:// endpoint (e.g. tcp://0.0.0.0:5555)")


def _check_infer_token(token: str) -> None:
    if token:
        check_token(token, "setting 'auth.infer_token'", "use a long random one, e.g. "
                    "python3 -c 'import secrets; print(secrets.token_urlsafe(24))'")


CAMERAS = ("none", "folder", "push", "picamera2", "v4l2")
DISPLAYS = ("none", "file", "framebuffer", "kiosk", "luma")


def _check_hardware(settings: Settings) -> None:
    if settings.camera.kind not in CAMERAS:
        raise ConfigError(f"setting 'camera.kind': {settings.camera.kind!r} is not one of "
                          f"{', '.join(CAMERAS)}")
    if settings.display.kind not in DISPLAYS:
        raise ConfigError(f"setting 'display.kind': {settings.display.kind!r} is not one of "
                          f"{', '.join(DISPLAYS)}")
    if settings.camera.kind in ("folder", "v4l2") and not settings.camera.path:
        raise ConfigError(f"setting 'camera.path': camera {settings.camera.kind} needs a "
                          "path (a folder of pictures, or a device like /dev/video0)")
    if settings.display.kind in ("file", "framebuffer") and not settings.display.path:
        raise ConfigError(f"setting 'display.path': display {settings.display.kind} needs a "
                          "path (an output folder, or a device like /dev/fb0)")
    _check_pins(settings.buttons)


def _check_pins(buttons: Buttons) -> None:
    seen: dict[int, str] = {}
    for name in ("next", "previous", "capture", "shutdown", "led"):
        pin = getattr(buttons, name)
        if pin == NO_PIN:
            continue
        if not 0 <= pin <= 27:
            raise ConfigError(f"setting 'buttons.{name}': BCM pin {pin} does not exist; "
                              "use 0-27, or -1 for none")
        if pin in seen:
            raise ConfigError(f"setting 'buttons.{name}': pin {pin} is already used by "
                              f"'buttons.{seen[pin]}'")
        seen[pin] = name
