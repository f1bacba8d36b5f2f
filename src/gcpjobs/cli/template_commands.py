"""`gcpjobs template show|generate`: base job templates, as work pools take them.

`show` prints a default template; `generate` turns a job file into a template whose variables
default to the file's values (what prefect-gcp's `generate_work_pool_base_job_template` does
for its blocks). Both print YAML or JSON that `gcpjobs run --template FILE` takes back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from gcpjobs.cli.console import console

app = typer.Typer(help="Base job templates with {{ variables }}.", no_args_is_help=True)

FormatOption = Annotated[str, typer.Option("--format", "-f", help="yaml or json.")]


def _dump(template: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(template, indent=2)
    if fmt == "yaml":
        import yaml

        return yaml.safe_dump(template, sort_keys=False, allow_unicode=True)
    raise typer.BadParameter(f"{fmt!r} is not a format; use yaml or json", param_hint="--format")


@app.command()
def show(
    kind: Annotated[str, typer.Argument(help="vertex or cloud-run.")],
    fmt: FormatOption = "yaml",
) -> None:
    """Print the default base job template of a kind."""
    from gcpjobs.specs.templates import default_template

    rendered = _dump(default_template(kind).to_dict(), fmt)
    console.print(rendered, markup=False, soft_wrap=True, end="")


@app.command()
def generate(
    file: Annotated[Path, typer.Argument(help="A job file, whose values become the defaults.")],
    fmt: FormatOption = "yaml",
) -> None:
    """Print a base job template made from a job file (secret-looking env values left out)."""
    from gcpjobs.specs.jobfile import load_job_file
    from gcpjobs.specs.templates import generate_base_job_template

    rendered = _dump(generate_base_job_template(load_job_file(file)), fmt)
    console.print(rendered, markup=False, soft_wrap=True, end="")
