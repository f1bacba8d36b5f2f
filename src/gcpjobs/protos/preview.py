"""How a request is shown by `preview`, whichever API it is for: its proto3 JSON form with the
plain values of secret-looking variables and the credentials in values redacted, written as YAML or JSON.

No Google library is imported here, so a Cloud Run preview never loads the Vertex types (and
the other way round).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Literal

import yaml

from gcpjobs.specs.secrets import shown_value

PreviewFormat = Literal["yaml", "json"]
# Shown in a preview's `parent` when the job names no project; the client fills in the
# configured one (or the emulator's `gcpjobs-local`) when it sends the request.
PROJECT_PLACEHOLDER = "<project>"


def redact_env(env_vars: Iterable[dict[str, Any]]) -> None:
    """Redact, in place, the plain values of variables whose names look secret and the
    credentials other values carry (`gcpjobs.specs.secrets.shown_value`). References to a
    secret store (`valueSource`) stay: they name a secret, they do not hold it."""
    for env_var in env_vars:
        if isinstance(env_var.get("value"), str):
            env_var["value"] = shown_value(str(env_var.get("name", "")), env_var["value"])


class _PreviewDumper(yaml.SafeDumper):
    """Writes multi-line strings (inline scripts in `args`) as literal blocks, as users wrote them."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_PreviewDumper.add_representer(str, _represent_str)


def dump_preview(request: dict[str, Any], fmt: PreviewFormat | str) -> str:
    """`request` (already redacted) as YAML or JSON text."""
    if fmt == "json":
        return json.dumps(request, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        return yaml.dump(
            request, Dumper=_PreviewDumper, sort_keys=False, allow_unicode=True, width=100
        )
    raise ValueError(f"unknown preview format {fmt!r}; use 'yaml' or 'json'")
