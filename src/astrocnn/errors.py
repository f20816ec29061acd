"""Errors that reach the user as one clear line (the CLI prints them and exits with code 2)."""

import difflib
from collections.abc import Iterable


class AstroCNNError(Exception):
    """An error caused by what the user asked for: bad input, a bad option, an unknown name."""


class ShapeError(AstroCNNError, ValueError):
    """An input whose rank, channel count or spatial size does not fit a network."""


class UnknownNameError(AstroCNNError, KeyError):
    """A name that is not in a registry; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class OptionError(AstroCNNError, ValueError):
    """An option a builder does not take, or a value it cannot use."""


class Interrupted(AstroCNNError):
    """The user stopped a run (Ctrl-C); its state was saved. Exit code 130, as for SIGINT."""

    exit_code = 130


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'resnet18'?)"`` for a mistyped name close to one of ``choices``, else ``""``."""
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
