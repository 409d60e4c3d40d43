"""Benchmarks: the box against bare onnxruntime and other servers (`servers.py`, `make bench`),
and one script per feature measured in the README (teach, ledger, provenance, verify, kiosk,
v2, compat, the default bundles, a load test). Each runs as `python tools/bench/NAME.py`."""
