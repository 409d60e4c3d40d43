"""What a hostile file costs POST /v1/verify: memory and CPU of a real server reading it.

    python tools/bench/verify.py [--manifests 21] [--lists 170000] [--at-once 1] [--runs 3]

Builds the attack's file in a temporary folder: a PNG signed with a key made elsewhere whose
manifest store holds `--manifests` - 1 signed ingredients, each manifest with an assertion
of `--lists` empty lists (one byte of CBOR each); with --manifests 21 and --lists 170000 it
is 3.7 MB. Then, in each run, starts `appliance serve` on the default bundles, posts the file
`--at-once` times at once, and prints the answers' statuses, the server's peak RSS over its
RSS before (sampled every 20 ms) and the CPU seconds it spent (from /proc).
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
ROOT = Path(__file__).resolve().parents[2]
if __name__ == "__main__":
    sys.path[0] = str(ROOT)  # not this folder


def attack_file(folder: Path, manifests: int, lists: int) -> bytes:
    """A PNG whose store holds `manifests` manifests of `lists` empty lists each."""
    import c2pa
    from PIL import Image

    from appliance import provenance, signkeys

    key = signkeys.load_or_make(folder / "elsewhere")
    settings = c2pa.Settings.from_dict(provenance._SIGN_SETTINGS)
    info = c2pa.C2paSignerInfo(key.alg, key.chain_pem, key.key_pem, None)
    context = c2pa.Context(settings=settings, signer=c2pa.Signer.from_info(info))
    picture = io.BytesIO()
    Image.new("RGB", (16, 16)).save(picture, "PNG")

    def sign(ingredients: list[bytes]) -> bytes:
        manifest = {"claim_generator_info": [{"name": "x", "version": "1"}], "title": "t",
                    "assertions": [{"label": "org.evil.big", "data": {"x": [[]] * lists}}]}
        builder = c2pa.Builder(json.dumps(manifest), context=context)
        for number, ingredient in enumerate(ingredients):
            builder.add_ingredient({"title": f"i{number}", "relationship": "componentOf"},
                                   "image/png", io.BytesIO(ingredient))
        out = io.BytesIO()
        builder.sign("image/png", io.BytesIO(picture.getvalue()), out)
        return out.getvalue()

    return sign([sign([]) for _ in range(manifests - 1)])


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(data: bytes, at_once: int) -> dict:
    """One server, `at_once` posts of `data`: statuses, RSS before and peak, CPU seconds."""
    from tools.live_server import LiveServer

    with tempfile.TemporaryDirectory() as state, \
            LiveServer(ROOT / "models", Path(state)) as live:
        live.wait_ready()
        pid, statuses, done = live.process.pid, [], threading.Event()
        time.sleep(1)
        before, cpu, peak = _rss_mb(pid), _cpu_s(pid), [0.0]

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], _rss_mb(pid))
                time.sleep(0.02)

        def post() -> None:
            connection = http.client.HTTPConnection("127.0.0.1", live.port, timeout=300)
            connection.request("POST", "/v1/verify", body=data,
                               headers={"Content-Type": "image/png"})
            answer = connection.getresponse()
            answer.read()
            statuses.append(answer.status)

        sampler = threading.Thread(target=sample)
        sampler.start()
        posts = [threading.Thread(target=post) for _ in range(at_once)]
        for thread in posts:
            thread.start()
        for thread in posts:
            thread.join()
        done.set()
        sampler.join()
        return {"statuses": statuses, "rss_before_mb": round(before),
                "rss_added_mb": round(peak[0] - before), "cpu_s": round(_cpu_s(pid) - cpu, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--manifests", type=int, default=21)
    parser.add_argument("--lists", type=int, default=170_000)
    parser.add_argument("--at-once", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        data = attack_file(Path(folder), args.manifests, args.lists)
    print(f"file: {len(data)} bytes, {args.manifests} manifests", flush=True)
    for _ in range(args.runs):
        print(json.dumps(run(data, args.at_once)), flush=True)


if __name__ == "__main__":
    main()
