"""Field types the job specs share: each one a type with its check attached (`Annotated`).

A spec declares `region: Region = "us-central1"` instead of a validator method that calls
`check_region`, so that every spec (and every pool of a spec) refuses the same input in the
same words, and a new spec gets the rule by naming the type. The checks raise `SpecError`;
pydantic records the field's path, and `specs.base` turns that into the one-line message.

Types whose rule is one kind's own (a Vertex AI machine type, a Cloud Run memory size) live
in that kind's module; this one holds what more than one spec uses.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

from gcpjobs.errors import SpecError
from gcpjobs.specs.base import scalar_text, shown
from gcpjobs.specs.container import (
    check_image,
    check_project,
    check_region,
    labels_as_text,
    sanitized_labels,
    to_command,
    to_text_list,
)

ProjectId = Annotated[str | None, AfterValidator(check_project)]
"""A project id or number; None lets the client find the configured project."""

Region = Annotated[str, AfterValidator(check_region)]

Image = Annotated[str, AfterValidator(check_image)]
"""A container image URI: not empty, no whitespace."""

Command = Annotated[list[str], BeforeValidator(to_command)]
"""Words; one string is split as a shell would (`python train.py --x 1`)."""

TextList = Annotated[list[str], BeforeValidator(to_text_list)]
"""Text items; numbers and booleans become the text a YAML user meant."""

Text = Annotated[str, BeforeValidator(scalar_text)]
"""Text; a number, boolean or date given in YAML becomes the text it was written as."""

Labels = Annotated[dict[str, str], BeforeValidator(labels_as_text),
                   AfterValidator(sanitized_labels)]
"""Google Cloud labels, made valid (see `specs.labels.sanitize_labels`)."""


def matching(pattern: re.Pattern[str], problem: str) -> AfterValidator:
    """A check for optional text that must match `pattern`: else `<value> <problem>`."""

    def check(value: str | None) -> str | None:
        if value is None or pattern.match(value):
            return value
        raise SpecError(f"{shown(value)} {problem}")

    return AfterValidator(check)


def each_matching(pattern: re.Pattern[str], problem: str) -> AfterValidator:
    """A check for a list whose every item must match `pattern`: else `<item> <problem>`
    (the path names the list, as the API's error would)."""

    def check(values: list[str]) -> list[str]:
        for value in values:
            if not pattern.match(value):
                raise SpecError(f"{shown(value)} {problem}")
        return values

    return AfterValidator(check)

