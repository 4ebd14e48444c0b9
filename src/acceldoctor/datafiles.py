"""Reading the project's YAML data files (rules, knowledge base) against their pydantic schema, with one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


def validation_errors(exc: ValidationError, limit: int = 5) -> str:
    """The first `limit` problems pydantic found, on one line."""
    parts = []
    errors = exc.errors()
    for error in errors[:limit]:
        where = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    more = f" (and {len(errors) - limit} more)" if len(errors) > limit else ""
    return "; ".join(parts) + more


def read_data_file(path: Path, error: type[Exception], what: str) -> str:
    """The UTF-8 text of a user-given data file; `error` with a one-line message when it cannot be read."""
    path = Path(path)
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise error(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read {what} {path}: {getattr(exc, 'strerror', None) or exc}") from None


def validate_document(raw: object, label: str, model: type[Model], error: type[Exception], schema: str | None = None,
                      not_it: str = "the expected file", hint: str = "") -> Model:
    """Validate a parsed document as `model`; with `schema`, its `schema` field must equal it first. Problems raise
    `error` with a one-line message naming `label`."""
    if schema is not None:
        found = raw.get("schema") if isinstance(raw, dict) else None
        if found != schema:
            raise error(f"{label} is not {not_it}: its schema is {found!r}, expected {schema!r}{hint}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise error(f"{label} is invalid: {validation_errors(exc)}") from None


def load_validated_yaml(text: str, label: str, model: type[Model], error: type[Exception],
                        schema: str | None = None, not_it: str = "the expected file") -> Model:
    """Parse `text` as YAML, then validate_document it."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{label} is not valid YAML: {' '.join(str(exc).split())}") from None
    return validate_document(raw, label, model, error, schema, not_it)
