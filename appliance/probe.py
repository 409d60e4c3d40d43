"""The first session of an uploaded model, in a process of its own: a model that crashes or
exhausts onnxruntime takes this process down, not the server.

    python -m appliance.probe BUNDLE_FOLDER [TIMEOUT_S]
        exit 0: loads, and runs on every probe input within TIMEOUT_S each; else the reason

A bundle with other graphs (text: detect, then orient and read each line) also runs its
whole task on real-looking pictures, so that every graph loads (from bytes) and runs on what
the one before it gives.

It runs the model on zeros and on inputs that look like what the box will feed it (a
synthetic photograph, noise, a white frame, each through the bundle's own preprocessing):
a model can be harmless on zeros and loop or allocate for ever on a real picture. Before
each run it prints `input: NAME`, so that the installer can say which input a crash or the
memory limit (set by the installer) struck on.
"""

from __future__ import annotations

import os
import re
import sys
import time

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

EXIT_REFUSED = 3
EXIT_TIMEOUT = 4
EXIT_MEMORY = 5
DEFAULT_TIMEOUT_S = 30.0
PHOTO_SIZE = (640, 480)


def synthetic_photo(size: tuple[int, int] = PHOTO_SIZE, seed: int = 0):
    """A photo-like RGB image made in numpy: a lit gradient, a few bright and dark shapes,
    sensor noise and every value from black to white somewhere."""
    import numpy as np
    from PIL import Image

    width, height = size
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    light = 255 * (0.25 + 0.6 * x / width) * (0.5 + 0.5 * y / height)
    pixels = np.stack([light, light * 0.8 + 30, 200 - light * 0.5], axis=-1)
    for _ in range(6):  # discs of flat colour, like objects in a scene
        cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(20, height / 3)
        pixels[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.uniform(0, 255, 3)
    pixels[: height // 8, : width // 8] = 255  # a blown-out highlight
    pixels[-height // 8:, -width // 8:] = 0  # a deep shadow
    pixels += rng.normal(0, 6, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def probe_inputs(found, shape: tuple[int, ...]) -> list[tuple[str, object]]:
    """(name, tensor) for every probe run: zeros, then images through the preprocessing."""
    import numpy as np
    from PIL import Image

    from appliance.sessions import input_dtype
    from appliance.tasks import preprocess

    spec = found.manifest.input
    height, width = spec.size
    rng = np.random.default_rng(1)
    noise = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")
    images = {"a synthetic photograph": synthetic_photo(),
              "uniform noise": noise,
              "a white image": Image.new("RGB", (width, height), (255, 255, 255))}
    runs = [("zeros", np.zeros(shape, input_dtype(found)))]
    runs += [(name, preprocess.prepare(image, spec)[0]) for name, image in images.items()]
    return runs


def run_all(session, input_name: str, runs, timeout_s: float) -> tuple[int, str]:
    """Run each probe input under its own deadline; (exit code, reason) of the first that
    fails, or (0, "")."""
    from appliance.deadlines import Deadlines

    with Deadlines() as deadlines:
        for name, tensor in runs:
            print(f"input: {name}", flush=True)
            with deadlines.watch(time.monotonic() + timeout_s) as ticket:
                try:
                    session.run(None, {input_name: tensor}, ticket.options)
                except Exception as exc:
                    return _failure(name, exc, ticket.expired, timeout_s)
    return 0, ""


def run_pipeline(found, main, graphs: dict, timeout_s: float) -> tuple[int, str]:
    """For a bundle with other graphs: the whole task (its own preprocessing, the main graph,
    then postprocessing that runs the others on what the main one found) on the synthetic
    photograph and a white image, each run under its own deadline; (exit code, reason) of
    the first that fails, or (0, "")."""
    from PIL import Image

    from appliance import tasks
    from appliance.deadlines import Deadlines
    from appliance.tasks.base import Context

    task = tasks.get(found.manifest.task)
    main_input = main.get_inputs()[0].name
    names = [output.name for output in main.get_outputs()]
    pictures = {"a synthetic photograph (whole task)": synthetic_photo(),
                "a white image (whole task)": Image.new("RGB", PHOTO_SIZE, (255, 255, 255)),
                "a picture with lines of text (whole task)": text_picture()}
    with Deadlines() as deadlines:
        for name, picture in pictures.items():
            print(f"input: {name}", flush=True)
            with deadlines.watch(time.monotonic() + timeout_s) as ticket:

                def graph(which: str, tensor, ticket=ticket):
                    session = graphs[which]
                    return session.run(None, {session.get_inputs()[0].name: tensor},
                                       ticket.options)

                try:
                    tensor, geometry = task.prepare(picture, found.manifest.input)
                    outputs = main.run(None, {main_input: tensor}, ticket.options)
                    ctx = Context(found, geometry, task.parse({}, found), image=picture,
                                  graph=graph, names=names)
                    task.postprocess(outputs, ctx)
                except Exception as exc:
                    return _failure(name, exc, ticket.expired, timeout_s)
    return 0, ""


def text_picture():
    """Dark lines of text on white: what a text bundle's later graphs must be run on (on a
    photograph without text they would never run)."""
    from PIL import Image, ImageDraw, ImageFont

    picture = Image.new("RGB", PHOTO_SIZE, (255, 255, 255))
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=PHOTO_SIZE[1] // 10)
    for row, line in enumerate(("PROBE 0123456789", "the quick brown fox", "Gallery Box")):
        draw.text((PHOTO_SIZE[0] // 12, PHOTO_SIZE[1] // 8 + row * PHOTO_SIZE[1] // 4), line,
                  fill=(20, 20, 20), font=font)
    return picture


def _failure(name: str, exc: Exception, expired: bool, timeout_s: float) -> tuple[int, str]:
    if expired:
        return EXIT_TIMEOUT, f"the model did not finish within {timeout_s:g} s on {name}"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, MemoryError) or "alloc" in text.lower():
        asked = re.search(r"buffer of size (\d+)", text)
        size = f": it asked for {int(asked.group(1)) / 1e6:,.0f} MB at once" if asked else ""
        return EXIT_MEMORY, f"the model ran out of memory on {name}{size}"
    return EXIT_REFUSED, f"onnxruntime cannot run the model on {name}: {text}"


def main(folder: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> int:
    import onnxruntime as ort

    from appliance import bundle as bundles
    from appliance.errors import ApplianceError
    from appliance.sessions import check_signature

    try:
        found = bundles.read(folder)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        # From bytes, not a path: onnxruntime then has no folder to resolve external data
        # against, so a model that points outside itself cannot load at all.
        session = ort.InferenceSession(found.model_path.read_bytes(), options,
                                       providers=["CPUExecutionProvider"])
        name, shape = check_signature(session, found)
        code, reason = run_all(session, name, probe_inputs(found, shape), timeout_s)
        if not code and found.manifest.graphs:
            graphs = {graph: _load_graph(ort, found, graph, options)
                      for graph in found.manifest.graphs}
            code, reason = run_pipeline(found, session, graphs, timeout_s)
    except ApplianceError as exc:
        code, reason = EXIT_REFUSED, exc.message
    except MemoryError:
        code, reason = EXIT_MEMORY, "the model ran out of memory while loading"
    except Exception as exc:  # onnxruntime's own errors: the reason is what matters
        code, reason = EXIT_REFUSED, ("onnxruntime cannot load the model: "
                                      f"{(str(exc).strip() or 'no reason').splitlines()[0]}")
    if code:
        print(reason, flush=True)
    return code


def _load_graph(ort, found, graph: str, options):
    """One of the bundle's other graphs, from bytes like the main one. Raises ApplianceError
    naming the graph when onnxruntime cannot load it."""
    from appliance.errors import BundleError

    try:
        return ort.InferenceSession(found.graph_path(graph).read_bytes(), options,
                                    providers=["CPUExecutionProvider"])
    except Exception as exc:
        text = (str(exc).strip() or "no reason").splitlines()[0]
        raise BundleError(f"{found.name}/manifest.json.graphs.{graph}: onnxruntime cannot "
                          f"load {found.manifest.graphs[graph]['file']}: {text}") from None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], *(float(a) for a in sys.argv[2:3])))
