"""Job templates with variables: one job document, many runs, a few values changed per run.

A base job template has the shape of a Prefect work pool's base job template:

```yaml
job_configuration:          # a job document, as `parse_job_document` reads it
  kind: cloud-run
  image: "{{ image }}"
  task_count: "{{ task_count }}"
  args: ["--shard", "{{ shard }}"]
variables:                  # a JSON schema of type object: one property per variable
  type: object
  properties:
    image: {type: string}
    task_count: {type: integer, default: 1}
    shard: {type: integer, default: 0}
  required: [image]
```

Rendering takes the schema's defaults, then the template-level `values`, then the per-run
`overrides` (Prefect's job variables), checks them against the schema and puts them in:

- a placeholder that is a whole value keeps the value's type (a list stays a list);
- a placeholder inside longer text is replaced by the value as text (booleans as true/false,
  lists and mappings as JSON; an unset variable there is an error);
- a whole-value placeholder whose variable is unset (None, no default) removes its key or list
  item, so the job gets the spec's default rather than null; a mapping or list that only held
  such placeholders goes with them (`vpcAccess: {connector: "{{ vpc_connector }}"}`).

Placeholders are read in values only, never in keys, and a value that itself contains `{{` is
put in as it is, not rendered again. Unlike Prefect, a placeholder that `variables` does not declare is an error (a typo would
otherwise reach the job as literal text), and so is an override of a name the template has no
variable for: a value the template hard-codes cannot be changed per run.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from gcpjobs.errors import JobFileError, SpecError
from gcpjobs.specs.base import closest, field_path, shown, type_name
from gcpjobs.specs.secrets import looks_secret

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError as SchemaViolation

    from gcpjobs.specs.base import Spec

__all__ = [
    "JobTemplate",
    "TemplateError",
    "default_template",
    "find_placeholders",
    "generate_base_job_template",
    "parse_assignments",
]

# Names like Prefect's (`{{ name }}`, `{{name}}`), captured broadly so that `{{ prefect.x }}`
# or `{{ $HOME }}` is reported as an undeclared placeholder rather than passed on as text.
_PLACEHOLDER = re.compile(r"\{\{\s*([\w.\-\[\]$]+)\s*\}\}")
_WHOLE = re.compile(r"\s*\{\{\s*([\w.\-\[\]$]+)\s*\}\}\s*")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TEMPLATE_KEYS = ("job_configuration", "variables")
# Variables whose values may be secrets: errors describe them without echoing the value.
_QUIET_VARIABLES = frozenset({"env"})
_TYPE_WORDS = {
    "integer": "a whole number", "number": "a number", "string": "text",
    "boolean": "true or false", "array": "a list", "object": "a mapping", "null": "null",
}


class TemplateError(SpecError):
    """A job template is malformed, or its variables' values do not fit it."""


def _error(reason: str, *, variable: str | None = None, source: str | None = None) -> TemplateError:
    """One line: `<source>: job variable <name>: <reason>` (parts left out when unknown)."""
    error = TemplateError(reason, field=variable)
    parts = [p for p in (source, f"job variable {variable}" if variable else None) if p]
    error.args = (": ".join([*parts, reason]),)
    return error


class _Removed:
    """Marks a rendered value that is left out of its enclosing mapping or list."""


_REMOVED = _Removed()


def find_placeholders(node: Any) -> set[str]:
    """Every placeholder name used in the values (not the keys) of a document."""
    found: set[str] = set()
    for text in _strings(node):
        found.update(_PLACEHOLDER.findall(text))
    return found


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list | tuple):
        for item in node:
            yield from _strings(item)


def _as_text(name: str, value: Any, where: str) -> str:
    """A value as it reads inside longer text: booleans as YAML writes them, structures as
    JSON (so that they can be read back), everything else with str()."""
    if value is None:
        raise _error(f"has no value but is used inside the text at {where}; give it a value "
                     "or make the placeholder the whole value there", variable=name)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _render(node: Any, values: Mapping[str, Any], path: list[str | int]) -> Any:
    if isinstance(node, str):
        whole = _WHOLE.fullmatch(node)
        if whole:
            value = values[whole.group(1)]
            # A deep copy: the rendered document must not share lists or mappings with the
            # caller's values (the spec layer may be handed the same override twice).
            return _REMOVED if value is None else copy.deepcopy(value)
        where = field_path(path) or "the top level"
        # One pass with a function: text a value brings in is never scanned for placeholders.
        return _PLACEHOLDER.sub(lambda m: _as_text(m.group(1), values[m.group(1)], where), node)
    if isinstance(node, Mapping):
        rendered: dict[str, Any] = {}
        for key, value in node.items():
            item = _render(value, values, [*path, str(key)])
            if item is not _REMOVED:
                rendered[key] = item
        # A mapping that held only unset placeholders would reach the API as an empty message
        # (`vpcAccess: {}`), which is not the same as leaving it out.
        return _REMOVED if node and not rendered else rendered
    if isinstance(node, list | tuple):
        items = [_render(item, values, [*path, index]) for index, item in enumerate(node)]
        kept = [item for item in items if item is not _REMOVED]
        return _REMOVED if node and not kept else kept
    return copy.deepcopy(node)


# -- schema errors, in one line --------------------------------------------------------------


def _expected(schema: Any, root: Mapping[str, Any]) -> str | None:
    """`a whole number`, `text or null` ... for a schema that only constrains the type."""
    if not isinstance(schema, Mapping):
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, Mapping) else None
        return _expected(target, root)
    kind = schema.get("type")
    if isinstance(kind, str):
        return _TYPE_WORDS.get(kind, kind)
    if isinstance(kind, list):
        return " or ".join(_TYPE_WORDS.get(str(k), str(k)) for k in kind)
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list):
            # null means "unset", which every variable may be: not worth naming.
            words = [_expected(option, root) for option in options
                     if not (isinstance(option, Mapping) and option.get("type") == "null")]
            if all(words):
                return " or ".join(w for w in words if w)
    if "enum" in schema:
        return "one of " + ", ".join(str(v) for v in schema["enum"])
    return None


def _schema_problem(error: SchemaViolation, quiet: bool,
                    root: Mapping[str, Any]) -> str:
    got = "" if quiet else f", got {shown(error.instance)}"
    validator = error.validator
    value: Any = error.validator_value
    if validator == "type" or validator in ("anyOf", "oneOf"):
        expected = _expected(error.schema, root) or "a different value"
        example = " (quote it to give text)" if "text" in expected else ""
        return f"must be {expected}{got}{example}"
    if validator == "enum":
        return f"must be one of {', '.join(str(v) for v in value)}{got}"
    if validator == "const":
        return f"must be {value!r}{got}"
    if validator in ("minimum", "exclusiveMinimum"):
        word = "at least" if validator == "minimum" else "more than"
        return f"must be {word} {value}{got}"
    if validator in ("maximum", "exclusiveMaximum"):
        word = "at most" if validator == "maximum" else "less than"
        return f"must be {word} {value}{got}"
    if validator == "pattern":
        return f"must match the pattern {value}{got}"
    if quiet:
        return f"does not satisfy the variable's schema ({validator}); fix the value"
    return f"{error.message.splitlines()[0][:160]}; fix the value"


def _is_quiet(name: str, path: Sequence[Any]) -> bool:
    return name in _QUIET_VARIABLES or any(isinstance(p, str) and looks_secret(p) for p in path)


# -- the template ----------------------------------------------------------------------------


class JobTemplate:
    """A base job template: a job document with `{{ placeholders }}` and their JSON schema.

    Immutable: the attributes hand out copies, and rendering never changes the template.
    """

    __slots__ = ("_job_configuration", "_variables", "source")

    _job_configuration: dict[str, Any]
    _variables: dict[str, Any]
    source: str

    def __init__(self, job_configuration: Mapping[str, Any],
                 variables: Mapping[str, Any] | None = None, *, source: str = "template") -> None:
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "_job_configuration", copy.deepcopy(dict(job_configuration)))
        schema = copy.deepcopy(dict(variables)) if variables is not None else {}
        schema.setdefault("type", "object")
        schema.setdefault("properties", {})
        object.__setattr__(self, "_variables", schema)
        self._check()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"JobTemplate is immutable; cannot set {name}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, JobTemplate):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True, default=str))

    def __repr__(self) -> str:
        return f"JobTemplate(source={self.source!r}, variables={self.variable_names()!r})"

    @property
    def job_configuration(self) -> dict[str, Any]:
        return copy.deepcopy(self._job_configuration)

    @property
    def variables(self) -> dict[str, Any]:
        return copy.deepcopy(self._variables)

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "template") -> JobTemplate:
        """A template from `{"job_configuration": ..., "variables": ...}`; TemplateError."""
        if not isinstance(data, Mapping):
            raise _error(f"must be a mapping with job_configuration and variables, not "
                         f"{type_name(data)}", source=source)
        for key in data:
            if key not in _TEMPLATE_KEYS:
                near = closest(str(key), _TEMPLATE_KEYS, n=1)
                hint = f"did you mean {near[0]!r}?" if near else "remove it"
                raise _error(f"{key!r} is not part of a job template (it has job_configuration "
                             f"and variables); {hint}", source=source)
        if "job_configuration" not in data:
            raise _error("has no job_configuration; add the job document (kind: ... and its "
                         "fields, with {{ placeholders }}) under job_configuration",
                         source=source)
        document = data["job_configuration"]
        if not isinstance(document, Mapping):
            raise _error(f"job_configuration must be a mapping (a job document), not "
                         f"{type_name(document)}", source=source)
        variables = data.get("variables")
        if variables is not None and not isinstance(variables, Mapping):
            raise _error(f"variables must be a JSON schema of type object, not "
                         f"{type_name(variables)}", source=source)
        return cls(document, variables, source=source)

    @classmethod
    def load(cls, path: str | Path) -> JobTemplate:
        """A template from a YAML or JSON file; JobFileError/TemplateError, one line."""
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise JobFileError(f"{file}: no such file; check the template's path") from None
        except IsADirectoryError:
            raise JobFileError(f"{file}: is a directory; give the path of a YAML or JSON "
                               "template") from None
        except (PermissionError, UnicodeDecodeError) as exc:
            raise JobFileError(f"{file}: cannot be read ({type(exc).__name__}); check the "
                               "file") from None
        try:
            # YAML is a superset of JSON: one parser reads both.
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or "cannot be parsed"
            raise JobFileError(f"{file}: is not valid YAML or JSON{where}: {problem}; fix the "
                               "syntax there") from None
        if data is None:
            raise JobFileError(f"{file}: is empty; write job_configuration and variables")
        return cls.from_mapping(data, source=str(file))

    def _check(self) -> None:
        schema = self._variables
        if schema.get("type") != "object":
            raise _error(f"variables must be a JSON schema of type object, not type "
                         f"{schema.get('type')!r}; write `type: object` and `properties:`",
                         source=self.source)
        properties = schema.get("properties")
        if not isinstance(properties, Mapping):
            raise _error("variables.properties must be a mapping of variable names to their "
                         "schemas", source=self.source)
        for name, prop in properties.items():
            if not isinstance(name, str) or not _VARIABLE_NAME.match(name):
                raise _error(f"variable name {name!r} cannot be used in a placeholder; use "
                             "letters, digits and '_'", source=self.source)
            if not isinstance(prop, Mapping):
                raise _error(f"variables.properties.{name} must be a schema mapping such as "
                             f"{{type: string}}, not {type_name(prop)}", source=self.source)
        required = schema.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise _error("variables.required must be a list of variable names",
                         source=self.source)
        for name in required:
            if name not in properties:
                raise _error(f"variables.required names {name!r}, which is not in "
                             "variables.properties; declare it or remove it from required",
                             source=self.source)
        # jsonschema is imported here, not at the top: it costs ~45 ms, and the CLI and the
        # emulator import the spec layer on every start without needing templates.
        from jsonschema import exceptions as schema_exceptions
        from jsonschema.validators import validator_for

        try:
            validator_for(schema).check_schema(schema)
        except schema_exceptions.SchemaError as exc:
            where = field_path(["variables", *exc.path])
            raise _error(f"{where} is not a valid JSON schema: "
                         f"{exc.message.splitlines()[0][:160]}", source=self.source) from None
        undeclared = sorted(find_placeholders(self._job_configuration) - set(properties))
        if undeclared:
            name = undeclared[0]
            near = closest(name, properties, n=1)
            hint = (f"did you mean {{{{ {near[0]} }}}}? If not, d" if near else "D")
            more = f" (also: {', '.join(undeclared[1:])})" if len(undeclared) > 1 else ""
            raise _error(f"placeholder {{{{ {name} }}}} in job_configuration is not declared"
                         f"{more}; {hint}eclare it under variables.properties with its type "
                         "and default", source=self.source)

    # -- use -------------------------------------------------------------------------------

    def variable_names(self) -> list[str]:
        """The variables this template takes, in the order the schema declares them."""
        return list(self._variables["properties"])

    def to_dict(self) -> dict[str, Any]:
        """`{"job_configuration": ..., "variables": ...}`, e.g. a work pool's base job template."""
        return {"job_configuration": self.job_configuration, "variables": self.variables}

    def resolve_values(self, values: Mapping[str, Any] | None = None,
                       overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Every variable's value (None = unset): defaults <- values <- overrides, checked."""
        properties: Mapping[str, Any] = self._variables["properties"]
        merged: dict[str, Any] = {
            name: copy.deepcopy(prop.get("default")) for name, prop in properties.items()}
        for given in (values, overrides):
            for name, value in (given or {}).items():
                if name not in properties:
                    raise self._unknown(str(name))
                merged[name] = _text_if_declared(properties[name], value)
        for name in self._variables.get("required", []):
            if merged.get(name) is None:
                raise _error(f"is required and has no value; give it per run (--set "
                             f"{name}=...) or as a default in the template", variable=name,
                             source=self.source)
        self._validate(merged)
        return merged

    def _unknown(self, name: str) -> TemplateError:
        known = self.variable_names()
        near = closest(name, known, n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        listed = ", ".join(known) if known else "none"
        return _error(f"is not a variable of this template; {hint}Known variables: {listed}. "
                      "A value the template hard-codes cannot be set per run: add a "
                      "placeholder and a variable for it", variable=name, source=self.source)

    def _validate(self, merged: Mapping[str, Any]) -> None:
        from jsonschema import exceptions as schema_exceptions
        from jsonschema.validators import validator_for

        # Unset variables are left out: None means "not given", which every variable may be
        # (its key is then left out of the job), whatever type its schema names.
        instance = {name: value for name, value in merged.items() if value is not None}
        schema = {key: value for key, value in self._variables.items() if key != "required"}
        validator = validator_for(schema)(schema)
        error = schema_exceptions.best_match(validator.iter_errors(instance))
        if error is None:
            return
        path = list(error.absolute_path)
        if not path:
            raise _error(f"the values do not fit the variables' schema: "
                         f"{error.message.splitlines()[0][:160]}", source=self.source)
        name = str(path[0])
        where = field_path([name, *path[1:]])
        problem = _schema_problem(error, _is_quiet(name, path[1:]), self._variables)
        if where != name:
            problem = f"{where[len(name):].lstrip('.')} {problem}"
        raise _error(problem, variable=name, source=self.source)

    def render(self, values: Mapping[str, Any] | None = None,
               overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The job document with every placeholder filled in (see the module docs)."""
        resolved = self.resolve_values(values, overrides)
        try:
            document = _render(self._job_configuration, resolved, [])
        except TemplateError as exc:
            raise _error(exc.reason, variable=exc.field, source=self.source) from None
        return {} if document is _REMOVED else dict(document)

    def render_spec(self, values: Mapping[str, Any] | None = None,
                    overrides: Mapping[str, Any] | None = None) -> Spec:
        """The rendered document read into a validated spec (VertexJob, CloudRunJob ...)."""
        from gcpjobs.specs.jobfile import parse_job_document  # jobfile imports every kind

        document = self.render(values, overrides)
        spec: Spec = parse_job_document(document, source=f"{self.source} (rendered)")
        return spec


def _text_if_declared(schema: Any, value: Any) -> Any:
    """A number given for a text-only variable, as text: `--set project=123456` (a project
    number) or a YAML file's `version: 2` mean the text the user typed."""
    declared = schema.get("type") if isinstance(schema, Mapping) else None
    text_only = declared == "string" or declared == ["string", "null"] or declared == ["null", "string"]
    if text_only and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


# -- defaults and generation -----------------------------------------------------------------


def default_template(kind: str) -> JobTemplate:
    """The template gcpjobs ships for a kind ("vertex", "cloud-run" or a plug-in's): one
    variable per field users set per deployment, with the spec's own defaults. The kind's
    registry entry names what makes it (UnknownKindError, listing the kinds, for another)."""
    from gcpjobs.kinds import kind_entry

    data = kind_entry(kind).load("default_template")(kind)
    return JobTemplate.from_mapping(data, source=f"default {kind} template")


def generate_base_job_template(spec: Spec) -> dict[str, Any]:
    """A template for `spec`'s kind with one placeholder per field and `spec`'s values as the
    defaults: rendering it without overrides gives back an equal spec.

    Secret-looking environment values are not written into the template in clear: when there
    are any, `env` gets no default and its description says so.
    """
    from gcpjobs.specs.default_templates import template_for_spec

    return template_for_spec(spec)


# -- CLI --set pairs ---------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """YAML's dates and times as the text the user typed; JSON schemas know no dates."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def parse_assignments(pairs: Sequence[str]) -> dict[str, Any]:
    """`["task_count=4", "args=[a, b]", "name=x"]` -> `{"task_count": 4, "args": ["a", "b"],
    "name": "x"}`. Each value is read as YAML (so `4` is a number, `[a, b]` a list, `''` empty
    text and nothing at all unsets the variable); a later pair for the same name wins."""
    result: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep:
            raise TemplateError(f"--set {pair!r} has no '='; write it as NAME=VALUE, e.g. "
                                "--set task_count=4")
        if not _VARIABLE_NAME.match(name):
            raise TemplateError(f"--set {pair!r}: {name!r} is not a variable name; write it "
                                "as NAME=VALUE, e.g. --set task_count=4")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or "cannot be parsed"
            raise TemplateError(f"--set {name}: {shown(text)} is not a YAML value ({problem}); "
                                "quote text, write lists as [a, b] and mappings as {k: v}") \
                from None
        result[name] = _plain(value)
    return result
