"""Google Cloud label rules, and how gcpjobs turns arbitrary labels into valid ones.

Rules (reference §1.5): at most 64 labels; keys 1-63 characters and starting with a lowercase
letter; values 0-63 characters; both made of lowercase letters, digits, `_` and `-`.
International letters are allowed as long as they are not upper case. The Vertex proto says
64 characters where the platform rule says 63; we validate at 63, which both accept.

The `validate_*` helpers are pure (no pydantic, no Google imports) because the emulator uses
them to refuse bad labels exactly as the spec does.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from gcpjobs.errors import SpecError

MAX_LABELS = 64
MAX_LABEL_LENGTH = 63

SUBMISSION_LABEL = "gcpjobs-submission-id"
KIND_LABEL = "gcpjobs-kind"
RESERVED_LABEL_PREFIX = "gcpjobs-"
# gcpjobs adds these to every job, so users get the remainder of the 64.
GCPJOBS_LABELS: tuple[str, ...] = (SUBMISSION_LABEL, KIND_LABEL)
MAX_USER_LABELS = MAX_LABELS - len(GCPJOBS_LABELS)

# What a label key gets in front when it does not start with a letter.
KEY_PREFIX = "x-"

_ALLOWED_MARKS = "_-"
_RULE = "lowercase letters, digits, '_' and '-'"


def _allowed_char(char: str) -> bool:
    if char in _ALLOWED_MARKS or char.isdecimal():
        return True
    # International letters are allowed; upper-case ones are not. Letters without case
    # (CJK, Arabic ...) are neither upper nor lower and are allowed.
    return char.isalpha() and not char.isupper() and char.lower() == char


def _starts_with_letter(text: str) -> bool:
    return bool(text) and text[0].isalpha() and _allowed_char(text[0])


def validate_label_key(key: str) -> str | None:
    """Why `key` is not a valid label key, or None when it is."""
    if not key:
        return "Label keys must not be empty."
    if len(key) > MAX_LABEL_LENGTH:
        return f'Label key "{key[:20]}..." is {len(key)} characters long; at most {MAX_LABEL_LENGTH} are allowed.'
    if not all(_allowed_char(char) for char in key):
        return f'Label key "{key}" may only contain {_RULE}.'
    if not _starts_with_letter(key):
        return f'Label key "{key}" must start with a lowercase letter.'
    return None


def validate_label_value(value: str) -> str | None:
    """Why `value` is not a valid label value, or None when it is (empty values are valid)."""
    if len(value) > MAX_LABEL_LENGTH:
        return f'Label value "{value[:20]}..." is {len(value)} characters long; at most {MAX_LABEL_LENGTH} are allowed.'
    if not all(_allowed_char(char) for char in value):
        return f'Label value "{value}" may only contain {_RULE}.'
    return None


def _replace_invalid(text: str) -> str:
    lowered = text.lower()
    return "".join(char if _allowed_char(char) else "-" for char in lowered)


def sanitize_label_value(value: str) -> str:
    """Lowercase, replace characters GCP refuses with `-`, and cut to 63 characters."""
    return _replace_invalid(value)[:MAX_LABEL_LENGTH]


def sanitize_label_key(key: str) -> str:
    """Like `sanitize_label_value`, and prefix `x-` when the key does not start with a letter."""
    cleaned = _replace_invalid(key)
    if not _starts_with_letter(cleaned):
        cleaned = KEY_PREFIX + cleaned
    return cleaned[:MAX_LABEL_LENGTH]


def is_reserved_label(key: str) -> bool:
    """Whether the key belongs to gcpjobs (users may not set it)."""
    return key.startswith(RESERVED_LABEL_PREFIX)


def sanitize_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """Valid GCP labels for `labels`, or a SpecError (field `labels`) saying what cannot be fixed.

    Fixable problems (case, characters, length) are fixed silently. Not fixable: an empty key,
    two keys that become the same, a key in gcpjobs' own `gcpjobs-` namespace, too many labels.
    """
    if len(labels) > MAX_USER_LABELS:
        raise SpecError(
            f"{len(labels)} labels given; at most {MAX_USER_LABELS} are allowed "
            f"(GCP allows {MAX_LABELS} and gcpjobs adds {len(GCPJOBS_LABELS)}); remove some",
            field="labels",
        )
    sanitized: dict[str, str] = {}
    origin: dict[str, str] = {}
    for key, value in labels.items():
        if not key:
            raise SpecError("a label key is empty; give every label a name", field="labels")
        clean_key = sanitize_label_key(key)
        if is_reserved_label(clean_key):
            raise SpecError(
                f"label {key!r} uses the reserved prefix {RESERVED_LABEL_PREFIX!r} that gcpjobs "
                "sets itself; rename it",
                field="labels",
            )
        if clean_key in sanitized:
            raise SpecError(
                f"labels {origin[clean_key]!r} and {key!r} both become {clean_key!r} once made "
                "valid for GCP; rename one of them",
                field="labels",
            )
        sanitized[clean_key] = sanitize_label_value(value)
        origin[clean_key] = key
    return sanitized


def new_submission_id() -> str:
    """A fresh id that marks one submission (32 hex characters, a valid label value)."""
    return uuid.uuid4().hex
