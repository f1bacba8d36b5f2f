"""`gcpjobs emulator env`: everything a client needs to reach the running emulator, in one line.

Like `gcloud beta emulators pubsub env-init`: `eval "$(gcpjobs emulator env)"` points the
gcpjobs clients (and the official clients, through `GCPJOBS_EMULATOR_HOST`) at the emulator;
`--json` says the same for programs; `--gcloud NAME` writes a gcloud configuration NAME that
sends gcloud's Cloud Run, Vertex AI, Logging and Secret Manager calls to it.

gcloud needs more than an endpoint override: for `gcloud run jobs` it derives a regional host
from the override (`http://us-central1-127.0.0.1:8471/`), which no resolver knows. So the
configuration also makes the emulator gcloud's HTTP proxy: gcloud then sends requests in
absolute form to the emulator's own address, which serves them for its own host names and
refuses any other (it forwards nothing). The configuration is written straight into gcloud's
`configurations/config_NAME` file (what `gcloud config set --configuration NAME` writes),
because eight `gcloud config set` calls would take ten seconds; it is not activated.
"""

from __future__ import annotations

import configparser
import json
import os
import shlex
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer

# The APIs the emulator serves over REST, by gcloud's `api_endpoint_overrides` name.
GCLOUD_APIS = ("run", "aiplatform", "logging", "secretmanager")
DEFAULT_GCLOUD_CONFIGURATION = "gcpjobs-emulator"


def gcloud_properties(rest_endpoint: str, *, project: str | None = None,
                      region: str | None = None) -> dict[str, dict[str, str]]:
    """The gcloud properties, by section, that send gcloud to the emulator at `rest_endpoint`."""
    url = urlsplit(rest_endpoint)
    properties: dict[str, dict[str, str]] = {
        "api_endpoint_overrides": {api: f"{rest_endpoint.rstrip('/')}/" for api in GCLOUD_APIS},
        "proxy": {"type": "http", "address": (url.hostname or "127.0.0.1"),
                  "port": str(url.port or 80)},
        # The emulator takes no credentials; gcloud would otherwise ask for a login.
        "auth": {"disable_credentials": "true"},
        "core": {"disable_usage_reporting": "true"},
        "component_manager": {"disable_update_check": "true"},
    }
    if project:
        properties["core"]["project"] = project
    if region:
        properties["run"] = {"region": region}
        properties["ai"] = {"region": region}
    return properties


def environment(grpc_address: str, rest_endpoint: str, *, project: str | None = None,
                region: str | None = None) -> dict[str, str]:
    """The environment variables: gcpjobs' own, then gcloud's properties as `CLOUDSDK_*`."""
    variables = {
        "GCPJOBS_EMULATOR_HOST": grpc_address,
        "GCPJOBS_EMULATOR_REST_HOST": rest_endpoint.removeprefix("http://"),
    }
    for section, values in gcloud_properties(rest_endpoint, project=project,
                                             region=region).items():
        for name, value in values.items():
            variables[f"CLOUDSDK_{section}_{name}".upper()] = value
    return variables


def gcloud_config_dir() -> Path:
    """gcloud's configuration directory: $CLOUDSDK_CONFIG, else ~/.config/gcloud."""
    configured = os.environ.get("CLOUDSDK_CONFIG")
    return Path(configured).expanduser() if configured else Path.home() / ".config" / "gcloud"


def write_gcloud_configuration(name: str, properties: dict[str, dict[str, str]],
                               config_dir: Path | None = None) -> Path:
    """Write (or update, keeping its other properties) the gcloud configuration `name`."""
    if not name or not all(char.isalnum() or char == "-" for char in name) \
            or not name[0].isalpha() or name.lower() != name:
        raise ValueError(f"{name!r} is not a gcloud configuration name: use lower-case letters, "
                         "digits and '-', starting with a letter")
    directory = (config_dir or gcloud_config_dir()) / "configurations"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"config_{name}"
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path, encoding="utf-8")
    for section, values in properties.items():
        if not parser.has_section(section):
            parser.add_section(section)
        for key, value in values.items():
            parser.set(section, key, value)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        parser.write(handle)
    temporary.replace(path)
    return path


def register(app: typer.Typer) -> None:
    """Add `env` to the `gcpjobs emulator` commands."""
    app.command("env")(env)


def env(
    shell: Annotated[bool, typer.Option("--shell", help="Print `export` lines (the default).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    gcloud: Annotated[
        str | None,
        typer.Option("--gcloud", metavar="CONFIGURATION",
                     help="Write these settings into the gcloud configuration CONFIGURATION "
                     f"(created if needed, not activated), e.g. {DEFAULT_GCLOUD_CONFIGURATION}."),
    ] = None,
    project: Annotated[str | None, typer.Option(help="Also set gcloud's project.")] = None,
    region: Annotated[str | None, typer.Option(help="Also set gcloud's run/region and ai/region.")] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="The emulator's data dir (default: the one `gcpjobs "
                     "emulator start` uses)."),
    ] = None,
) -> None:
    """Print what clients need to reach the running emulator (eval "$(gcpjobs emulator env)")."""
    from gcpjobs.emulator.config import default_data_dir
    from gcpjobs.emulator.control import running_emulator

    if sum((shell, as_json, gcloud is not None)) > 1:
        raise typer.BadParameter("give at most one of --shell, --json and --gcloud")
    directory = (data_dir or default_data_dir()).expanduser().resolve()
    info = running_emulator(directory)
    if info is None:
        typer.echo(f"no gcpjobs emulator running for data_dir={directory}; start one with "
                   "`gcpjobs emulator start --detach`", err=True)
        raise typer.Exit(1)
    variables = environment(info.grpc_address, info.rest_endpoint, project=project, region=region)
    if gcloud is not None:
        try:
            path = write_gcloud_configuration(
                gcloud, gcloud_properties(info.rest_endpoint, project=project, region=region))
        except (ValueError, OSError) as error:
            typer.echo(f"cannot write the gcloud configuration: {error}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"wrote gcloud configuration {gcloud!r} ({path}) for the emulator at "
                   f"{info.rest_endpoint}; use it with `gcloud --configuration {gcloud} ...` or "
                   f"`export CLOUDSDK_ACTIVE_CONFIG_NAME={gcloud}`")
        return
    if as_json:
        document: dict[str, Any] = {
            "grpc_address": info.grpc_address, "rest_endpoint": info.rest_endpoint,
            "environment": variables,
            "gcloud": {f"{section}/{key}": value for section, values in
                       gcloud_properties(info.rest_endpoint, project=project,
                                         region=region).items()
                       for key, value in values.items()},
        }
        typer.echo(json.dumps(document, indent=2))
        return
    for name, value in variables.items():
        typer.echo(f"export {name}={shlex.quote(value)}")
