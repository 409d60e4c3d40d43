"""What the client scripts share (they run in .venv-clients, without the appliance package):
each call's result or the exception it raised, printed as one JSON object."""

import json
import sys
import traceback


class Calls:
    """Run named calls, keep what each returned or raised, print them all as JSON."""

    def __init__(self) -> None:
        self.results: dict[str, dict] = {}

    def __call__(self, name: str, call, shape=lambda value: value) -> None:
        try:
            self.results[name] = {"ok": True, "value": shape(call())}
        except Exception as exc:  # (what the client raised is the result)
            self.results[name] = {"ok": False, "error": type(exc).__name__,
                                  "message": str(exc)[:300],
                                  "where": traceback.format_exc(limit=1)[-300:]}

    def print(self) -> None:
        json.dump(self.results, sys.stdout)
