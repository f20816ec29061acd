"""The one task registry."""

from __future__ import annotations

from astrocnn.errors import UnknownNameError
from astrocnn.tasks.base import Task

_TASKS: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator; a task name may be registered once."""
    if cls.name in _TASKS:
        raise ValueError(f"task {cls.name!r} is already registered")
    _TASKS[cls.name] = cls
    return cls


def list_tasks() -> list[str]:
    return sorted(_TASKS)


def get_task(name: str) -> Task:
    try:
        return _TASKS[name]()
    except KeyError:
        raise UnknownNameError(f"unknown task {name!r}; valid tasks: {', '.join(list_tasks())}") from None
