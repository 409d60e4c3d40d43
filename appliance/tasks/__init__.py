"""Tasks keyed by the manifest's `task`: one module each, holding its output options and its
pure pre- and postprocessing. Adding a task is adding a module and a line here.
"""

from __future__ import annotations

from types import ModuleType

from appliance.tasks import classify, detect, embed, image_to_image

_TASKS: dict[str, ModuleType] = {
    "classify": classify,
    "detect": detect,
    "embed": embed,
    "image-to-image": image_to_image,
}
NAMES = tuple(_TASKS)


def get(name: str) -> ModuleType:
    """The module for task `name`. Raises KeyError naming the known tasks."""
    try:
        return _TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}: known tasks are {', '.join(NAMES)}") from None
