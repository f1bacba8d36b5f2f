"""The `gcpjobs` command line.

Every command imports the heavy layers (Google clients, pydantic specs) inside its body, so
`gcpjobs --help` and the first byte of `gcpjobs run` stay fast. Errors that gcpjobs raises on
purpose are printed as one line; `--debug` shows the traceback too.
"""

from __future__ import annotations

import sys
from typing import Annotated, NoReturn

import typer

from gcpjobs import __version__
from gcpjobs.cli import (
    attach_commands,
    emulator_commands,
    job_commands,
    logs_commands,
    step_commands,
    template_commands,
)
from gcpjobs.cli.console import err_console

# Exit codes, documented in the README.
EXIT_OK = 0
EXIT_FAILED = 1  # the job (or an API call) failed
EXIT_BAD_INPUT = 2  # usage errors, invalid job files or specs
EXIT_INTERRUPTED = 130

app = typer.Typer(
    name="gcpjobs",
    help="Run ML and data work as Google Cloud jobs (Vertex AI, Cloud Run), or on the local emulator.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(emulator_commands.app, name="emulator")
app.add_typer(template_commands.app, name="template")
app.add_typer(step_commands.app, name="step")
job_commands.register(app)
attach_commands.register(app)
logs_commands.register(app)

_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        print(f"gcpjobs {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks for errors.", envvar="GCPJOBS_DEBUG")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    _state["debug"] = debug


def _fail(message: str, code: int) -> NoReturn:
    err_console.print(f"error: {message}", style="red", highlight=False, soft_wrap=True)
    raise SystemExit(code)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    from gcpjobs.errors import GcpJobsError, JobFileError, SpecError

    args = sys.argv[1:] if argv is None else argv
    if not [arg for arg in args if arg != "--debug"]:
        args = ["--help"]
    _state["debug"] = "--debug" in args
    try:
        # Outside standalone mode typer *returns* the code of a `typer.Exit` raised by a
        # command (and a command's own return value otherwise).
        returned = app(args=args, prog_name="gcpjobs", standalone_mode=False)
    except typer.Exit as done:
        raise SystemExit(done.exit_code) from None
    except typer.Abort:
        _fail("interrupted", EXIT_INTERRUPTED)
    except typer.TyperException as problem:  # click's usage errors, vendored by typer
        if type(problem).__name__ == "NoArgsIsHelpError":  # `gcpjobs emulator` alone
            print(problem.format_message())
            raise SystemExit(EXIT_OK) from None
        context = getattr(problem, "ctx", None)
        where = f" (see `{context.command_path} --help`)" if context is not None else ""
        message = problem.format_message() if hasattr(problem, "format_message") else str(problem)
        _fail(f"{message}{where}", EXIT_BAD_INPUT)
    except (SpecError, JobFileError) as problem:
        if _state["debug"]:
            err_console.print_exception()
        _fail(str(problem), EXIT_BAD_INPUT)
    except GcpJobsError as problem:
        if _state["debug"]:
            err_console.print_exception()
        _fail(str(problem), EXIT_FAILED)
    except KeyboardInterrupt:
        _fail("interrupted", EXIT_INTERRUPTED)
    raise SystemExit(returned if isinstance(returned, int) else EXIT_OK)


if __name__ == "__main__":
    main()
