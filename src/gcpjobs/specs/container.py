"""Field checks that every container job spec shares (Vertex AI and Cloud Run): the image,
its command and args, environment variable names, project, region, service account, labels.

Each check returns the value (possibly normalised) or raises a one-line `SpecError`; the field
types of `specs.fields` attach them to the specs' fields, so both kinds refuse the same input
in the same words.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Collection, Iterator, Mapping
from typing import Any

from gcpjobs.errors import SpecError
from gcpjobs.specs.base import scalar_text, shown, type_name
from gcpjobs.specs.labels import sanitize_labels

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PROJECT_ID = re.compile(r"(?:[a-z][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]\Z")
_PROJECT_NUMBER = re.compile(r"[0-9]{1,20}\Z")
_REGION = re.compile(r"[a-z]+-[a-z]+[0-9]+\Z")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+\Z")


def check_image(value: str) -> str:
    if not value.strip():
        raise SpecError("must not be empty; give the container image URI, e.g. python:3.11")
    if any(char.isspace() for char in value):
        raise SpecError(f"{shown(value)} contains whitespace; give only the image URI")
    return value


def to_command(value: Any) -> Any:
    """A command given as one string is split like a shell would (`python train.py --x 1`)."""
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise SpecError(f"cannot be split into words ({exc}); check the quotes") from None
    return to_text_list(value)


def to_text_list(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [scalar_text(item) for item in value]
    return value


def check_env_names(
    names: Collection[str], *, service: str, limit: int, reserved: Collection[str] = ()
) -> None:
    """Variable names must be identifiers, not ones `service` sets itself, and at most `limit`."""
    for name in names:
        if not _ENV_NAME.match(name):
            raise SpecError(f"{name!r} is not a valid variable name; use letters, digits and "
                            "'_', not starting with a digit")
        if name in reserved:
            raise SpecError(f"{name} is set by {service} in every task; remove it or use "
                            "another name")
    if len(names) > limit:
        raise SpecError(f"{len(names)} variables given; {service} allows at most {limit} "
                        "per container, pass the rest in a file or as args")


def env_values(value: Any) -> Iterator[tuple[Any, Any]]:
    """The (name, value) pairs of an env mapping; SpecError for anything but a mapping, and
    for a variable without a value."""
    if not isinstance(value, Mapping):
        raise SpecError(f"must be a mapping of names to values, not {type_name(value)}; "
                        "write it as `NAME: value` lines")
    for name, raw in value.items():
        if raw is None:
            raise SpecError(f"variable {name!r} has no value; give it one or remove it")
        yield name, raw


def check_project(value: str | None) -> str | None:
    if value is None or _PROJECT_ID.match(value) or _PROJECT_NUMBER.match(value):
        return value
    raise SpecError(f"{shown(value)} is not a Google Cloud project id; project ids are 6-30 "
                    "lowercase letters, digits and hyphens starting with a letter")


def check_region(value: str) -> str:
    if _REGION.match(value):
        return value
    raise SpecError(f"{shown(value)} is not a Google Cloud region; write it like us-central1")


def check_service_account(value: str | None, *, example_user: str) -> str | None:
    if value is None or _EMAIL.match(value):
        return value
    raise SpecError(f"{shown(value)} is not a service account; give its email, e.g. "
                    f"{example_user}@PROJECT.iam.gserviceaccount.com")


def labels_as_text(value: Any) -> Any:
    """Label keys and values given as numbers or booleans, as the text GCP stores."""
    if isinstance(value, Mapping):
        return {scalar_text(k): scalar_text(v) for k, v in value.items()}
    return value


def sanitized_labels(value: dict[str, str]) -> dict[str, str]:
    try:
        return sanitize_labels(value)
    except SpecError as exc:
        raise SpecError(exc.reason) from None  # the field path comes from pydantic
