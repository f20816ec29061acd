"""Scientific tasks, looked up by name."""

from astrocnn.tasks import digits, generic, iact, ising, sky, sky_shapes, tracks  # noqa: F401  (registers the tasks)
from astrocnn.tasks.base import ArraySplit, Task, TaskDefaults, TaskKind
from astrocnn.tasks.registry import get_task, list_tasks, register_task

__all__ = ["ArraySplit", "Task", "TaskDefaults", "TaskKind", "get_task", "list_tasks", "register_task"]
