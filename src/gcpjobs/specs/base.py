"""The base of every gcpjobs spec model: pydantic, but with one-line errors.

Pydantic reports every problem at once, over several lines, in its own words. Users of
gcpjobs get one line instead: the dotted path of the field, what is wrong and how to fix it
(`boot_disk_size_gb: -5 is not allowed; use a size between 100 and 64000 GB`). Validators in
spec models raise `SpecError` with a message that already says that; errors pydantic finds on
its own (wrong types, missing fields) are worded here.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from types import MappingProxyType
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ModelWrapValidatorHandler,
    TypeAdapter,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails
from typing_extensions import Self

from gcpjobs.errors import SpecError

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Paths under these fields may hold secrets: never echo the value a user gave there.
_QUIET_FIELDS = frozenset({"env"})


class Spec(BaseModel):
    """A validated, immutable-by-contract description of something gcpjobs will send.

    Construction, `model_validate`, attribute assignment and `model_copy(update=...)` all
    validate the whole model and raise `SpecError` (one line) instead of pydantic's
    `ValidationError`.
    """

    # Assignment is validated, but by rebuilding the whole model (see `__setattr__`), so that
    # values filled in from others (a bundled machine's GPU) follow a change of those others.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # Input names accepted besides the fields (converted by a `before` validator).
    input_aliases: ClassVar[frozenset[str]] = frozenset()
    # Names that are fields elsewhere (of a nested spec), with where they go: said instead of
    # a "did you mean" that only looks at spelling (`replica_count` is not `service_account`).
    misplaced_fields: ClassVar[Mapping[str, str]] = {}

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise spec_error_from(exc) from None

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Self:
        try:
            return super().model_validate(obj, **kwargs)
        except ValidationError as exc:
            raise spec_error_from(exc) from None

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **kwargs: Any) -> Self:
        try:
            return super().model_validate_json(json_data, **kwargs)
        except ValidationError as exc:
            raise spec_error_from(exc) from None

    def with_overrides(self, **fields: Any) -> Self:
        """A new, fully validated spec: the fields this one was given, updated with `fields`.

        Values this spec filled in by itself are not carried over, so they are derived again.
        """
        data = self.model_dump(exclude_unset=True)
        data.update(fields)
        return self.model_validate(data)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """Like pydantic's, but an `update` is validated (pydantic's own copy skips that)."""
        if update:
            return self.with_overrides(**update)
        return super().model_copy(deep=deep)

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in type(self).model_fields:
            super().__setattr__(name, value)
            return
        rebuilt = self.with_overrides(**{name: value})
        # This model becomes the rebuilt one, fields given included, as unpickling would.
        self.__setstate__(rebuilt.__getstate__())

    def _fill_in(self, **values: Any) -> None:
        """Store values an `after` validator derived from others (a bundled machine's GPU).

        They are valid already, and must not count as given (see `with_overrides`), so they
        are stored as they are: `setattr` would validate them again, and mark them given.
        """
        self.__dict__.update(values)

    @model_validator(mode="wrap")
    @classmethod
    def _mappings_as_views(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        # Because Spec overrides `__init__`, pydantic hands a dict given for a nested spec (a
        # worker pool) to the spec's class as keywords. Keywords must be text, so `{0: null}`
        # from YAML would be a TypeError instead of an "is not a known field" SpecError, and
        # the nested spec would word its own errors before the outermost one could choose the
        # most useful. A read-only view of the mapping is validated like a dict, field by
        # field, without that call (this runs before it).
        if isinstance(data, Mapping):
            data = MappingProxyType(data)
        return handler(data)

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown_fields(cls, data: Any) -> Any:
        # Runs before pydantic's own `extra="forbid"` check so that the error can suggest the
        # field the user probably meant.
        if isinstance(data, Mapping):
            known = set(cls.model_fields) | cls.input_aliases
            for key in data:
                if key not in known:
                    where = cls.misplaced_fields.get(str(key))
                    message = (f"is not a field here; {where}" if where
                               else unknown_field_message(str(key), known))
                    raise SpecError(message, field=field_path([str(key)]))
        return data


def unknown_field_message(name: str, known: Iterable[str]) -> str:
    """`is not a known field; did you mean ...?` with the closest known names."""
    known = sorted(known)  # read twice below: an iterator would be empty the second time
    close = difflib.get_close_matches(name, known, n=2, cutoff=0.6)
    if close:
        options = " or ".join(repr(c) for c in close)
        return f"is not a known field; did you mean {options}?"
    return f"is not a known field; remove it (known fields: {', '.join(known)})"


def closest(name: str, choices: Iterable[str], *, n: int = 3) -> list[str]:
    """The choices closest to `name` (for "did you mean" hints); may be empty."""
    return difflib.get_close_matches(name, list(choices), n=n, cutoff=0.5)


def did_you_mean(name: str, choices: Iterable[str], *, otherwise: str, n: int = 3) -> str:
    """`did you mean a or b?` with the choices closest to `name`, else `otherwise`."""
    near = closest(name, choices, n=n)
    return f"did you mean {' or '.join(near)}?" if near else otherwise


def api_name(value: str) -> str:
    """An API enum name as a user may write it (`flex-start `) as the API does (`FLEX_START`)."""
    return value.strip().upper().replace("-", "_")


def field_path(loc: Iterable[int | str]) -> str:
    """`("extra_worker_pools", 0, "machine_type")` -> `extra_worker_pools[0].machine_type`."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _IDENTIFIER.match(part):
            path += f".{part}" if path else part
        else:
            path += f"[{part!r}]"
    return path


def join_path(prefix: str, suffix: str | None) -> str | None:
    if not suffix:
        return prefix or None
    if not prefix:
        return suffix
    return f"{prefix}{suffix}" if suffix.startswith("[") else f"{prefix}.{suffix}"


def spec_error_from(exc: ValidationError) -> SpecError:
    """One SpecError (one line) for the most useful of pydantic's errors."""
    errors = exc.errors(include_url=False)
    # Our own validators' messages say how to fix things; prefer them over generic type errors.
    chosen = next((e for e in errors if isinstance(_carried_spec_error(e), SpecError)), errors[0])
    prefix = field_path(chosen["loc"])
    carried = _carried_spec_error(chosen)
    if isinstance(carried, SpecError):
        return SpecError(carried.reason, field=join_path(prefix, carried.field))
    return SpecError(describe_error(chosen, quiet=_is_quiet(chosen["loc"])), field=prefix or None)


def _carried_spec_error(error: ErrorDetails) -> object:
    ctx = error.get("ctx") or {}
    return ctx.get("error")


def _is_quiet(loc: Iterable[int | str]) -> bool:
    return any(part in _QUIET_FIELDS for part in loc)


def shown(value: Any) -> str:
    """A short, safe rendering of a user's value for an error message."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def type_name(value: Any) -> str:
    names = {dict: "a mapping", list: "a list", str: "text", bool: "true/false", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def describe_error(error: ErrorDetails, *, quiet: bool = False) -> str:
    """pydantic's error, worded as what is wrong and how to fix it (no newline)."""
    kind = error["type"]
    value = error.get("input")
    got = "" if quiet else f", got {shown(value)}"
    ctx = error.get("ctx") or {}
    messages = {
        "missing": "is required; add it to the job",
        "extra_forbidden": "is not a known field; remove it",
        "int_type": f"must be a whole number{got}; write it like 100",
        "int_parsing": f"must be a whole number{got}; write it like 100",
        "int_from_float": f"must be a whole number{got}; drop the fraction",
        "float_type": f"must be a number{got}; write it like 1.5",
        "float_parsing": f"must be a number{got}; write it like 1.5",
        "bool_type": f"must be true or false{got}",
        "bool_parsing": f"must be true or false{got}",
        "string_type": f"must be text, not {type_name(value)}; put the value in quotes",
        "list_type": f"must be a list, not {type_name(value)}; write it as [a, b]",
        "dict_type": f"must be a mapping, not {type_name(value)}; write it as `name: value` lines",
        "model_type": f"must be a mapping of fields, not {type_name(value)}",
        "model_attributes_type": f"must be a mapping of fields, not {type_name(value)}",
        "literal_error": f"must be one of {ctx.get('expected', '')}{got}",
        "too_long": f"has too many items; at most {ctx.get('max_length')} are allowed, remove some",
        "greater_than_equal": f"must be at least {ctx.get('ge')}{got}",
        "greater_than": f"must be more than {ctx.get('gt')}{got}",
        "less_than_equal": f"must be at most {ctx.get('le')}{got}",
    }
    if kind in messages:
        return messages[kind]
    if kind == "value_error":
        return f"{ctx.get('error', error['msg'])}; fix the value"
    return f"{error['msg'][:1].lower()}{error['msg'][1:]}{got}; fix the value"


# -- shared input helpers -------------------------------------------------------------------

_DURATION_PART = re.compile(
    r"(\d+(?:\.\d+)?)\s*(weeks?|w|days?|d|hours?|hrs?|h|minutes?|mins?|m|seconds?|secs?|s)",
    re.IGNORECASE,
)
_UNIT_SECONDS = {"w": 604_800.0, "d": 86_400.0, "h": 3_600.0, "m": 60.0, "s": 1.0}
_TIMEDELTA = TypeAdapter(timedelta)
DURATION_HINT = "write it like '2h', '90m', '1d 2h', '3600s' or a number of seconds"


def parse_duration(value: Any) -> timedelta:
    """A timedelta from a timedelta, seconds (number), or text: '2h', '1d 2h', '3600s', 'PT2H'.

    Raises SpecError (no field) with a message saying which forms are accepted.
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise SpecError(f"must be a duration, not true/false; {DURATION_HINT}")
    if isinstance(value, int | float):
        return _seconds(value, value)
    if not isinstance(value, str):
        raise SpecError(f"must be a duration, not {type_name(value)}; {DURATION_HINT}")
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return _seconds(number, value)
    parts = _DURATION_PART.findall(text)
    if parts and _DURATION_PART.sub("", text).strip() == "":
        seconds = sum(float(number) * _UNIT_SECONDS[unit[0].lower()] for number, unit in parts)
        return _seconds(seconds, value)
    try:
        return _TIMEDELTA.validate_python(text)
    except ValidationError:
        raise SpecError(f"{shown(value)} is not a duration; {DURATION_HINT}") from None


def _seconds(seconds: float, value: Any) -> timedelta:
    """timedelta(seconds=...), refusing NaN, infinity and spans beyond what it holds."""
    try:
        return timedelta(seconds=seconds)
    except (OverflowError, ValueError):
        raise SpecError(f"{shown(value)} is not a usable duration (not a finite number of "
                        f"seconds, or too long); {DURATION_HINT}") from None


def scalar_text(value: Any) -> Any:
    """Numbers, booleans and dates as the text a YAML user meant (`5` -> "5", `true` -> "true").

    Anything else is returned unchanged for the field's own type check to judge.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, date):  # YAML reads 2024-01-31 as a date
        return value.isoformat()
    return value


def _refuse_bool(value: Any) -> Any:
    # pydantic would read `true` as 1; for a count or a size that is always a mistake.
    if isinstance(value, bool):
        raise SpecError("must be a whole number, not true/false; write it like 1")
    return value


WholeNumber = Annotated[int, BeforeValidator(_refuse_bool)]
"""An int that refuses booleans."""
