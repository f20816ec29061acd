"""The one task registry."""

from __future__ import annotations

from typing import Any

from astrocnn.errors import OptionError, UnknownNameError, did_you_mean
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


def saved_task(name: str, options: dict[str, Any] | None = None) -> Task:
    """The task of a saved run or export, whose ``options`` are the resolved options of its day:
    an option added since takes the value those runs had (the task's ``options_before``), not
    today's default, so that the saved network still fits its task."""
    before = _TASKS[name].options_before if name in _TASKS else {}  # get_task names an unknown task
    return get_task(name, {**before, **dict(options or {})})


def get_task(name: str, options: dict[str, Any] | None = None) -> Task:
    """The task ``name`` with its ``options`` (see the task's ``option_names``)."""
    try:
        cls = _TASKS[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown task {name!r}{did_you_mean(name, list_tasks())}; valid tasks: {', '.join(list_tasks())}"
        ) from None
    options = dict(options or {})
    unknown = sorted(set(options) - set(cls.option_names))
    if unknown:
        takes = ", ".join(cls.option_names) or "none"
        hint = did_you_mean(unknown[0], cls.option_names)
        raise OptionError(f"task {name} has no option(s) {', '.join(unknown)}{hint} (its options: {takes})")
    try:
        return cls(**options)
    except ValueError as error:
        raise OptionError(f"task {name}: {error}") from None
