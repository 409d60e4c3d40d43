"""The tasks, keyed by the manifest's `task`: one module each, holding one `Task` class.

Adding a task is adding its module and a line here: every list of task names and options
(the manifest schema, the converter's choices and gate, the OpenAPI parameters, the screens,
the upload page's renderers) is derived from this registry.
"""

from __future__ import annotations

from appliance.tasks.base import Task
from appliance.tasks.classify import Classify
from appliance.tasks.detect import Detect
from appliance.tasks.edges import Edges
from appliance.tasks.embed import Embed
from appliance.tasks.image_to_image import ImageToImage
from appliance.tasks.ocr import Ocr
from appliance.tasks.pose import Pose
from appliance.tasks.segment import Segment

_TASKS: dict[str, Task] = {task.name: task for task in (
    Classify(), Detect(), Embed(), ImageToImage(), Segment(), Pose(), Ocr(), Edges(),
)}
NAMES = tuple(_TASKS)


def get(name: str) -> Task:
    """The task called `name`. Raises KeyError naming the known tasks."""
    try:
        return _TASKS[name]
    except KeyError:
        raise KeyError(f"unknown task {name!r}: known tasks are {', '.join(NAMES)}") from None


def all_tasks() -> tuple[Task, ...]:
    """Every registered task, in registration order."""
    return tuple(_TASKS.values())
