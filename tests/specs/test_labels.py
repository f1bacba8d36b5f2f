"""GCP label rules and sanitising."""

from __future__ import annotations

import pytest

from gcpjobs.errors import SpecError
from gcpjobs.specs.labels import (
    KIND_LABEL,
    MAX_USER_LABELS,
    SUBMISSION_LABEL,
    sanitize_label_key,
    sanitize_label_value,
    sanitize_labels,
    validate_label_key,
    validate_label_value,
)


@pytest.mark.parametrize("key", ["a", "team", "my_key-2", "é-clé", "x" * 63, "日本"])
def test_valid_keys(key: str) -> None:
    assert validate_label_key(key) is None


@pytest.mark.parametrize(
    ("key", "fragment"),
    [("", "empty"), ("Team", "only contain"), ("2fa", "start with"), ("_x", "start with"),
     ("a.b", "only contain"), ("x" * 64, "at most 63"), ("É", "only contain")],
)
def test_invalid_keys(key: str, fragment: str) -> None:
    problem = validate_label_key(key)
    assert problem is not None and fragment in problem


@pytest.mark.parametrize("value", ["", "v1", "0", "a_b-c", "x" * 63])
def test_valid_values(value: str) -> None:
    assert validate_label_value(value) is None


@pytest.mark.parametrize("value", ["V1", "a b", "a/b", "x" * 64])
def test_invalid_values(value: str) -> None:
    assert validate_label_value(value) is not None


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("Team", "team"), ("ML Ops", "ml-ops"), ("2fa", "x-2fa"), ("_private", "x-_private"),
     ("prefect.io/flow-run-id", "prefect-io-flow-run-id"), ("k" * 80, "k" * 63)],
)
def test_sanitize_key(raw: str, clean: str) -> None:
    assert sanitize_label_key(raw) == clean
    assert validate_label_key(clean) is None


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("Prod", "prod"), ("v1.2.3", "v1-2-3"), ("", ""), ("a@b.com", "a-b-com"), ("v" * 70, "v" * 63)],
)
def test_sanitize_value(raw: str, clean: str) -> None:
    assert sanitize_label_value(raw) == clean
    assert validate_label_value(clean) is None


def test_sanitize_labels_is_idempotent() -> None:
    once = sanitize_labels({"Team": "ML Ops", "9lives": "Yes"})
    assert sanitize_labels(once) == once


@pytest.mark.parametrize(
    ("labels", "fragment"),
    [
        ({SUBMISSION_LABEL: "x"}, "reserved prefix"),
        ({KIND_LABEL.upper(): "x"}, "reserved prefix"),
        ({"A": "1", "a": "2"}, "rename one of them"),
        ({f"k{i}": "" for i in range(MAX_USER_LABELS + 1)}, "at most 62"),
    ],
)
def test_unfixable_labels_are_refused(labels: dict[str, str], fragment: str) -> None:
    with pytest.raises(SpecError) as caught:
        sanitize_labels(labels)
    assert caught.value.field == "labels"
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_user_may_use_all_labels_left_by_gcpjobs() -> None:
    labels = {f"k{i}": "" for i in range(MAX_USER_LABELS)}
    assert len(sanitize_labels(labels)) == 62
