"""Checks of a job's arguments shared by the experiment families."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["_check_choice"]


def _check_choice(name: str, value, choices: Iterable) -> None:
    """Raise ``ValueError`` naming ``name``, its value and the allowed ``choices`` unless ``value`` is one of them."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {choices}")
