"""glibc malloc tuning: applied in a fresh process, skipped where the owner set it."""

import os
import subprocess
import sys

import pytest

CODE = "from appliance.memory import tune_malloc; print(tune_malloc())"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")


def _run(env: dict[str, str]) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True,
                          env={**clean, **env}, check=True, timeout=60)
    return done.stdout.strip()


def test_applied_in_a_fresh_process():
    assert _run({}) == "['MALLOC_ARENA_MAX=2', 'MALLOC_MMAP_THRESHOLD_=262144']"


def test_the_owners_environment_wins():
    assert _run({"MALLOC_ARENA_MAX": "4"}) == "['MALLOC_MMAP_THRESHOLD_=262144']"
    assert _run({"MALLOC_ARENA_MAX": "4", "MALLOC_MMAP_THRESHOLD_": "65536"}) == "[]"


FRAGMENT = """
import re, sys
from appliance.memory import tune_malloc
if sys.argv[1] == "tuned":
    tune_malloc()
import numpy as np
rss = lambda: int(re.search(r"VmRSS:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
before = rss()
keep = []
for _ in range(2):
    big = []
    for _ in range(16):
        big.append(np.ones(1024 * 1024, np.float32))  # 4 MB, like an activation or upload
        keep.append(bytes(6400))  # small and long-lived, between the big ones
    del big
print(rss() - before)
"""


def test_freed_large_blocks_go_back_to_the_os_only_when_tuned():
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}

    def grown_kb(mode: str) -> int:
        done = subprocess.run([sys.executable, "-c", FRAGMENT, mode], capture_output=True,
                              text=True, env=clean, check=True, timeout=60)
        return int(done.stdout)

    # Untuned, glibc keeps the second round's 64 MB in its heap; tuned, it is returned.
    assert grown_kb("plain") > 32 * 1024
    assert grown_kb("tuned") < 8 * 1024
