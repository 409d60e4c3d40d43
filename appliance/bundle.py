"""Model bundles (format `appliance-bundle/1`): the manifest schema, reading, checking, writing.

The writer (tools/) and the reader (the box) share this one schema. Unknown fields and unknown
format versions are refused; the model's sha256 is verified before it is loaded; every error
names the file and the field. What a bundle may hold is capped so that reading one costs the
server little before the install probe has run: every string (appliance.schema), the input
size, and the labels file (its size is checked before a byte of it is read).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance import head as heads
from appliance import tasks
from appliance.errors import BadRequest, BundleError
from appliance.schema import Field, list_of, one_of, positive, text_problem, validate
from appliance.storage import fsync_dir

FORMAT = "appliance-bundle/1"
MANIFEST = "manifest.json"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
NAME_RULE = "1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit"
MAX_MANIFEST_BYTES = 256 * 1024
# The default bundles take 128-320 px, classifiers commonly 224-600, detectors up to 1280 and
# image-to-image models 512-1024. 4096 a side and 2048 x 2048 in area keep one float input
# at 48 MB or less; what a model builds from it is measured by the install probe.
MAX_SIDE = 4096
MAX_AREA = 2048 * 2048
# ImageNet-21k has 21,843 labels in about 0.5 MB; the default bundles' longest label is 30.
MAX_LABELS_BYTES = 1 << 20
MAX_LABELS = 100_000
MAX_LABEL_LENGTH = 200
# A taught model's head (classify `output.head`): 1000 classes of 1280 numbers are 5 MB.
MAX_HEAD_BYTES = 32 << 20


def check_name(name: str, noun: str = "model name", label: str = "") -> None:
    """Raise BadRequest unless `name`, from a request, is a whole bundle name (NAME_PATTERN);
    the message shows at most 80 of its characters, after `label`, and calls it a `noun`."""
    if not NAME_PATTERN.fullmatch(name):
        raise BadRequest(f"{label}{name[:80]!r} is not a {noun}: {NAME_RULE}")


def _name(value: str) -> str | None:
    return None if NAME_PATTERN.fullmatch(value) else f"must be {NAME_RULE}"


def _sha256(value: str) -> str | None:
    return None if re.fullmatch(r"[0-9a-f]{64}", value) else "must be 64 lowercase hex digits"


def _plain_file(value: str) -> str | None:
    if "/" in value or "\\" in value or value in ("", ".", "..") or value.startswith("."):
        return "must be a plain file name inside the bundle"
    return None


def _not_negative(value: float) -> str | None:
    return None if value >= 0 else "must be 0 or more"


TOP = {
    "format": Field(str),
    "name": Field(str, check=_name),
    "version": Field(str, max_length=64),
    "task": Field(str, check=one_of(*tasks.NAMES)),
    "description": Field(str, required=False, default="", max_length=4000, multiline=True),
    "attribution": Field(dict),
    "model": Field(dict),
    "input": Field(dict),
    "output": Field(dict),
    "created_by": Field(dict, required=False, default={}),
    "serving": Field(dict, required=False, default={}),
    "graphs": Field(dict, required=False, default={}),
    "terms": Field(dict, required=False, default={}),
}
ATTRIBUTION = {
    "author": Field(str, max_length=300),
    "source": Field(str, max_length=500),
    "license": Field(str, max_length=200),
}
MODEL = {
    "file": Field(str, check=_plain_file),
    "sha256": Field(str, check=_sha256),
    "precision": Field(str, check=one_of("fp32", "fp16", "int8")),
    "quantization": Field(dict, required=False, default=None),
}
INPUT = {
    "name": Field(str),
    "layout": Field(str, check=one_of("NCHW", "NHWC")),
    "size": Field(list, check=list_of(int, 2)),
    "resize": Field(str, check=one_of("stretch", "shorter-side-center-crop", "letterbox")),
    "color": Field(str, check=one_of("RGB", "BGR")),
    "scale": Field((int, float), required=False, default=1.0),
    "mean": Field(list, required=False, check=list_of((int, float), 3), default=[0, 0, 0]),
    "std": Field(list, required=False, check=list_of((int, float), 3), default=[1, 1, 1]),
    "dtype": Field(str, required=False, check=one_of("float32", "uint8"), default="float32"),
    "dynamic_batch": Field(bool, required=False, default=False),
}
# How the box should serve this model, as measured by whoever built it; the owner's
# models.max_batch and models.max_wait_ms, when set, take precedence.
SERVING = {
    "max_batch": Field(int, required=False, check=positive),
    "max_wait_ms": Field((int, float), required=False, check=_not_negative),
}
# What the model's authors ask of every box that runs it, enforced by the box. A term this
# box does not know refuses the bundle: a box must never serve a model on terms it ignores.
TERMS = {
    "requires_token": Field(bool, required=False, default=False),
}
CREATED_BY = {
    "tool": Field(str, required=False, default=""),
    "version": Field(str, required=False, default=""),
    "onnx": Field(str, required=False, default=""),
    "onnxruntime": Field(str, required=False, default=""),
    "torch": Field(str, required=False, default=""),
    "opset": Field(int, required=False, check=positive, default=None),
    "source_sha256": Field(str, required=False, default=""),
    "packages": Field(dict, required=False, default={}),
}


@dataclass(frozen=True)
class InputSpec:
    """How the box turns an image into the model's input tensor."""

    name: str
    layout: str
    size: tuple[int, int]
    resize: str
    color: str
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    dtype: str
    dynamic_batch: bool


@dataclass(frozen=True)
class Manifest:
    """A checked manifest.json."""

    name: str
    version: str
    task: str
    description: str
    attribution: dict[str, str]
    model: dict[str, Any]
    input: InputSpec
    output: dict[str, Any]
    created_by: dict[str, Any]
    raw: dict[str, Any]
    serving: dict[str, Any] = field(default_factory=dict)
    # The bundle's other graphs by name (each like `model`: file, sha256, precision), for
    # tasks that run more than one (text: detect, then orient and read each line).
    graphs: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The authors' terms (TERMS): requires_token, the model answers only with a token.
    terms: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Bundle:
    """A bundle on disk whose manifest has been checked."""

    path: Path
    manifest: Manifest
    labels: list[str]
    head: heads.Head | None = None  # a taught classifier's class means (output.head)

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def model_path(self) -> Path:
        return self.path / self.manifest.model["file"]

    def graph_path(self, name: str) -> Path:
        """The file of the other graph called `name`. Raises KeyError for an unknown one."""
        return self.path / self.manifest.graphs[name]["file"]

    def files(self) -> dict[str, Path]:
        """Every model file of the bundle by its manifest field (`model`, `graphs.NAME`)."""
        return {"model": self.model_path,
                **{f"graphs.{name}": self.graph_path(name) for name in self.manifest.graphs}}

    def summary(self) -> dict[str, Any]:
        """What the API and the web page show about this bundle."""
        m = self.manifest
        return {
            "name": m.name, "version": m.version, "task": m.task,
            "description": m.description, "precision": m.model["precision"],
            "input_size": list(m.input.size), "license": m.attribution["license"],
            "attribution": dict(m.attribution), "terms": dict(m.terms),
        }


def parse_manifest(data: Any, where: str = MANIFEST) -> Manifest:
    """Check a decoded manifest.json. Raises BundleError naming `where` and the field."""
    try:
        return _parse(data, where)
    except ValueError as exc:
        raise BundleError(f"{exc}: fix the manifest and install the bundle again") from None


def _parse(data: Any, where: str) -> Manifest:
    if isinstance(data, dict) and data.get("format") != FORMAT:
        raise ValueError(f"{where}.format: {data.get('format')!r} is not a format this box "
                         f"reads (it reads {FORMAT!r}); upgrade the appliance or rebuild")
    top = validate(data, TOP, where)
    try:
        task = tasks.get(top["task"])
    except KeyError as exc:
        raise ValueError(f"{where}.task: {exc.args[0]}") from None
    output = validate(top["output"], task.output, f"{where}.output")
    problem = task.check_output(output)
    if problem:
        raise ValueError(f"{where}.output.{problem}")
    spec = validate(top["input"], INPUT, f"{where}.input")
    if any(v == 0 for v in spec["std"]):
        raise ValueError(f"{where}.input.std: must not contain 0")
    _check_size(spec["size"], f"{where}.input.size")
    return Manifest(
        name=top["name"], version=top["version"], task=top["task"],
        description=top["description"],
        attribution=validate(top["attribution"], ATTRIBUTION, f"{where}.attribution"),
        model=validate(top["model"], MODEL, f"{where}.model"),
        input=_input_spec(spec),
        output=output,
        created_by=validate(top["created_by"], CREATED_BY, f"{where}.created_by"),
        raw=data,
        serving={k: v for k, v in validate(top["serving"], SERVING, f"{where}.serving")
                 .items() if v is not None},
        graphs=_graphs(top["graphs"], task.graphs, f"{where}.graphs"),
        terms=validate(top["terms"], TERMS, f"{where}.terms"),
    )


def _graphs(section: dict[str, Any], names: tuple[str, ...], where: str) -> dict[str, dict]:
    """Each of the task's other graphs, checked like `model`. Raises ValueError naming the
    graph that is missing, unknown or wrong."""
    for name in section:
        if name not in names:
            known = ", ".join(names) or "none"
            raise ValueError(f"{where}.{name}: this task runs no graph of that name "
                             f"(its graphs: {known})")
    graphs = {}
    for name in names:
        if name not in section:
            raise ValueError(f"{where}.{name}: missing; this task needs the graphs "
                             f"{', '.join(names)}")
        graphs[name] = validate(section[name], MODEL, f"{where}.{name}")
    return graphs


def _check_size(size: list[int], where: str) -> None:
    height, width = size
    if height <= 0 or width <= 0:
        raise ValueError(f"{where}: both sides must be above 0")
    if max(height, width) > MAX_SIDE:
        raise ValueError(f"{where}: {height} x {width} has a side over {MAX_SIDE}, the limit; "
                         "resize to a smaller input")
    if height * width > MAX_AREA:
        raise ValueError(f"{where}: {height} x {width} is over {MAX_AREA:,} pixels, the limit "
                         "(2048 x 2048); resize to a smaller input")


def _input_spec(spec: dict[str, Any]) -> InputSpec:
    return InputSpec(
        name=spec["name"], layout=spec["layout"], size=tuple(spec["size"]),
        resize=spec["resize"], color=spec["color"], scale=float(spec["scale"]),
        mean=tuple(float(v) for v in spec["mean"]), std=tuple(float(v) for v in spec["std"]),
        dtype=spec["dtype"], dynamic_batch=spec["dynamic_batch"],
    )


def folders(models_dir: str | os.PathLike) -> list[Path]:
    """The bundle folders of a models directory, by name ([] when it does not exist).
    Hidden folders are not bundles: an install's staging area, a swap's kept version."""
    root = Path(models_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def read_installed(folder: str | os.PathLike) -> Bundle:
    """The bundle installed in `folder` of a models directory: `read`, and its manifest's
    name must be the folder's (the server serves it by the folder's name).

    Raises BundleError naming the file and field at fault.
    """
    bundle = read(folder)
    name = Path(folder).name
    if bundle.name != name:
        raise BundleError(f"{name}/manifest.json.name: is {bundle.name!r} but the folder is "
                          "named differently; rename one")
    return bundle


def read(path: str | os.PathLike, verify: bool = True) -> Bundle:
    """Read the bundle folder at `path`, check its manifest, labels and (if `verify`) sha256.

    Raises BundleError naming the file and field at fault.
    """
    folder = Path(path)
    manifest = parse_manifest(_read_json(folder / MANIFEST), f"{folder.name}/{MANIFEST}")
    model_path = folder / manifest.model["file"]
    _check_regular(model_path, folder)
    if verify:
        verify_sha256(model_path, manifest.model["sha256"])
    for name, graph in manifest.graphs.items():
        path = folder / graph["file"]
        _check_regular(path, folder, f"graphs.{name}.file")
        if verify:
            verify_sha256(path, graph["sha256"], f"graphs.{name}.sha256")
    labels = _read_labels(folder, manifest)
    head = _read_head(folder, manifest, labels, verify)
    return Bundle(path=folder, manifest=manifest, labels=labels, head=head)


def _read_json(path: Path) -> Any:
    _check_regular(path, path.parent)
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise BundleError(f"{path.parent.name}/{path.name}: larger than "
                          f"{MAX_MANIFEST_BYTES} bytes; a manifest is a few KB")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path.parent.name}/{path.name}: not valid JSON ({exc})") from None


def _check_regular(path: Path, folder: Path, named_by: str = "") -> None:
    where = f"{folder.name}/{path.name}"
    if path.is_symlink():
        raise BundleError(f"{where}: is a symbolic link; a bundle holds plain files only")
    if not path.is_file():
        if named_by:
            raise BundleError(f"{where}: missing; {MANIFEST}.{named_by} names it")
        raise BundleError(f"{where}: missing; a bundle needs {MANIFEST} and its model file")


def _read_labels(folder: Path, manifest: Manifest) -> list[str]:
    if not tasks.get(manifest.task).needs_labels:
        return []
    name = manifest.output["labels"]
    if _plain_file(name):
        raise BundleError(f"{folder.name}/{MANIFEST}.output.labels: {_plain_file(name)}")
    path = folder / name
    _check_regular(path, folder)
    where = f"{folder.name}/{name}"
    size = path.stat().st_size  # before reading: a 150 MB file once took the server to 3.9 GB
    if size > MAX_LABELS_BYTES:
        raise BundleError(f"{where}: {size:,} bytes, over the {MAX_LABELS_BYTES:,} byte "
                          "limit for a labels file; one short label per line")
    try:
        # One label a line, split on newlines only: str.splitlines would also end lines at
        # U+2028, FF, U+0085..., turning one label into two empty ones unseen (the control
        # check below refuses those characters instead, naming the line).
        labels = path.read_text(encoding="utf-8").split("\n")
        if labels[-1] == "":
            labels.pop()
        labels = [label.removesuffix("\r") for label in labels]
    except UnicodeDecodeError as exc:
        raise BundleError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") \
            from None
    _check_labels(labels, where)
    return labels


def _read_head(folder: Path, manifest: Manifest, labels: list[str],
               verify: bool) -> heads.Head | None:
    """The head named by `output.head`, its size capped and sha256 checked before it is
    read, its arrays checked against the labels (one per class, then the unknown label)."""
    name = manifest.output.get("head", "")
    if not name:
        return None
    path = folder / name
    _check_regular(path, folder, "output.head")
    where = f"{folder.name}/{name}"
    size = path.stat().st_size
    if size > MAX_HEAD_BYTES:
        raise BundleError(f"{where}: {size:,} bytes, over the {MAX_HEAD_BYTES:,} byte limit "
                          "for a head")
    if verify:
        verify_sha256(path, manifest.output["head_sha256"], "output.head_sha256")
    try:
        head = heads.load(path)
    except ValueError as exc:
        raise BundleError(f"{where}: {exc}") from None
    unknown = manifest.output["unknown"]
    if len(labels) != head.classes + 1 or labels[-1] != unknown:
        raise BundleError(f"{where}: {head.classes} class means need {head.classes + 1} "
                          f"labels, the classes' then {unknown!r} (output.unknown); the "
                          f"labels file has {len(labels)}")
    return head


def _check_labels(labels: list[str], where: str) -> None:
    if not labels:
        raise BundleError(f"{where}: empty; one label per line is needed")
    if len(labels) > MAX_LABELS:
        raise BundleError(f"{where}: {len(labels):,} lines, over the limit of {MAX_LABELS:,}")
    for number, label in enumerate(labels, start=1):
        problem = text_problem(label, MAX_LABEL_LENGTH)
        if problem:
            raise BundleError(f"{where}: line {number} {problem}")


def file_sha256(path: str | os.PathLike) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str, field_name: str = "model.sha256") -> None:
    """Raise BundleError if the file's sha256 is not `expected` (the manifest's
    `field_name`)."""
    actual = file_sha256(path)
    if actual != expected:
        raise BundleError(f"{path.parent.name}/{path.name}: sha256 is {actual}, the manifest's "
                          f"{field_name} says {expected}; the file is damaged or was changed: "
                          "reinstall it")


def write(dest: str | os.PathLike, manifest: dict[str, Any], model_file: str | os.PathLike,
          labels: list[str] | None = None, extras: dict[str, bytes | str] | None = None,
          graphs: dict[str, str | os.PathLike] | None = None) -> Bundle:
    """Write a bundle folder at `dest` atomically (build beside it, then rename).

    `graphs` gives the file of each of the manifest's `graphs` by name. Fills in every
    sha256; checks the result with `read`. Replaces an existing `dest`.
    Raises BundleError if the manifest does not check out.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    staging.chmod(0o755)
    try:
        _fill(staging, manifest, model_file, labels, extras or {}, graphs or {})
        read(staging)
        swap_in(staging, dest)
        shutil.rmtree(kept_path(dest), ignore_errors=True)  # no runner to fall back to here
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return read(dest)


def _fill(folder: Path, manifest: dict[str, Any], model_file: str | os.PathLike,
          labels: list[str] | None, extras: dict[str, bytes | str],
          graphs: dict[str, str | os.PathLike]) -> None:
    manifest = json.loads(json.dumps(manifest))
    for entry, source in [(manifest["model"], model_file)] + [
            (manifest["graphs"][name], path) for name, path in graphs.items()]:
        target = folder / entry["file"]
        shutil.copyfile(source, target)
        entry["sha256"] = file_sha256(target)
    if labels is not None:
        (folder / manifest["output"].get("labels", "labels.txt")).write_text(
            "\n".join(labels) + "\n", encoding="utf-8")
    for name, content in extras.items():
        data = content.encode("utf-8") if isinstance(content, str) else content
        (folder / name).write_bytes(data)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


KEPT = ".last-good"  # the version a swap replaced: .NAME.last-good, until the next swap


def kept_path(dest: Path) -> Path:
    """Where the version of the bundle at `dest` that the last swap replaced is kept."""
    return dest.with_name(f".{dest.name}{KEPT}")


def swap_in(folder: Path, dest: Path) -> None:
    """Make `folder` the bundle at `dest`, power-cut safe: every file of it reaches the disk
    before the rename makes it visible, and the renames before this returns. The version
    it replaces is kept (`kept_path`) until the next swap, for the caller to put back if the
    new one does not load; `recover` puts it back after a cut between the two renames."""
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    fsync_dir(folder)
    kept = kept_path(dest)
    if dest.exists():
        shutil.rmtree(kept, ignore_errors=True)
        dest.rename(kept)
    folder.rename(dest)
    fsync_dir(dest.parent)


def recover(models_dir: Path) -> list[str]:
    """Put back the previous version of each bundle whose swap was cut between its two
    renames (old or new, never a mix, never none); returns their names."""
    back = []
    for kept in sorted(models_dir.glob(".*" + KEPT)):
        dest = models_dir / kept.name[1:-len(KEPT)]
        if not dest.exists():
            kept.rename(dest)
            back.append(dest.name)
    if back:
        fsync_dir(models_dir)
    return back
