"""Query parameters the pages share. A filter form's "any" choice arrives as an empty value, which means no filter
(rather than a bad value); a value that does not fit is shown as an error page naming it (errors.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query
from pydantic import BeforeValidator, StringConstraints

Offset = Annotated[int, Query(ge=0, le=10**9)]


def _blank_is_none(value):
    return value or None


def choice(values: tuple[str, ...]):
    """An optional query parameter that must be one of `values`."""
    return Annotated[Literal[values] | None, BeforeValidator(_blank_is_none), Query()]


def text(max_length: int = 255):
    """An optional free-text query parameter (a hostname, a device model, a metric's name)."""
    # The length applies to the text, not to the None a blank becomes: hence on the inner str.
    return Annotated[Annotated[str, StringConstraints(max_length=max_length)] | None, BeforeValidator(_blank_is_none),
                     Query()]
