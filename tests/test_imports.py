"""The whole package imports with the hardware libraries blocked: they load lazily, inside
the one adapter that needs them."""

import subprocess
import sys

BLOCKED = ("picamera2", "libcamera", "cv2", "luma", "luma.core", "luma.oled", "lgpio",
           "RPi", "torch", "onnx")


def test_package_imports_with_hardware_libraries_blocked():
    code = f"""
import importlib, pkgutil, sys
for name in {BLOCKED!r}:
    sys.modules[name] = None  # import raises ImportError
import appliance
for info in pkgutil.walk_packages(appliance.__path__, "appliance."):
    if info.name != "appliance.__main__":
        importlib.import_module(info.name)
print("ok", len([m for m in sys.modules if m.startswith("appliance")]))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok")
