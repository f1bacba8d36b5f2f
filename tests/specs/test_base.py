"""The spec base: durations, field paths and the one-line error conversion."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import Field

from gcpjobs.errors import SpecError
from gcpjobs.specs.base import Spec, WholeNumber, field_path, parse_duration


@pytest.mark.parametrize(
    ("value", "expected"),
    [(90, timedelta(seconds=90)), (1.5, timedelta(seconds=1.5)), ("45", timedelta(seconds=45)),
     ("2h", timedelta(hours=2)), ("2 hours", timedelta(hours=2)), ("1w", timedelta(weeks=1)),
     ("1d2h30m", timedelta(days=1, hours=2, minutes=30)), ("3600.5s", timedelta(seconds=3600.5)),
     ("01:30:00", timedelta(minutes=90)), ("P1DT2H", timedelta(days=1, hours=2)),
     (timedelta(seconds=3), timedelta(seconds=3))],
)
def test_parse_duration(value: Any, expected: timedelta) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize("value", ["soon", "2x", "h", "", None, [1], True, "2h tomorrow"])
def test_parse_duration_refuses(value: Any) -> None:
    with pytest.raises(SpecError) as caught:
        parse_duration(value)
    assert "'2h'" in str(caught.value)


def test_field_path() -> None:
    assert field_path(("extra_worker_pools", 0, "machine_type")) == (
        "extra_worker_pools[0].machine_type")
    assert field_path(("env", "MY VAR")) == "env['MY VAR']"
    assert field_path(()) == ""


class _Sample(Spec):
    count: WholeNumber = 1
    names: list[str] = Field(default_factory=list)


def test_unknown_field_suggests_the_closest() -> None:
    with pytest.raises(SpecError) as caught:
        _Sample(cuont=2)  # type: ignore[call-arg]
    assert caught.value.field == "cuont"
    assert "did you mean 'count'" in str(caught.value)


def test_first_error_only_one_line() -> None:
    with pytest.raises(SpecError) as caught:
        _Sample(count="x", names=5)
    assert caught.value.field == "count"
    assert "\n" not in str(caught.value)


def test_json_input_is_converted_too() -> None:
    with pytest.raises(SpecError) as caught:
        _Sample.model_validate_json('{"names": [1, {}]}')
    assert caught.value.field == "names[0]"
