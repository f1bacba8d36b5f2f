"""`gcpjobs step result NAME`: the outcome of a remote step, fetched from its job.

For when the caller is gone (the process died, the notebook restarted): the job record says
where the result is and names the secret that holds the key that verifies it. When the job
itself is gone too (a Cloud Run Job not kept is deleted once it ends), the local run history
says the same (gcpjobs.history), and the command says the answer came from there. A returned value is printed (its
repr) or, with `--output`, written to a file as a pickle; a raised exception prints its remote
traceback and exits 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from gcpjobs.cli.console import console, err_console
from gcpjobs.cli.options import (
    EmulatorOption,
    KindOption,
    ProjectOption,
    RegionOption,
    use_emulator,
)

if TYPE_CHECKING:
    from gcpjobs.history import RunRecord

app = typer.Typer(help="Remote steps: Python functions run as jobs.", no_args_is_help=True)

EXIT_RAISED = 1
# A repr longer than this is cut: the value itself is one `--output` away.
MAX_REPR_CHARS = 20_000


def _show(value: Any, output: Path | None) -> None:
    if output is not None:
        import cloudpickle

        output.write_bytes(cloudpickle.dumps(value))
        err_console.print(f"the value ({type(value).__name__}) is in {output}; load it with "
                          "pickle.load", highlight=False, soft_wrap=True)
        return
    text = repr(value)
    if len(text) > MAX_REPR_CHARS:
        text = (text[:MAX_REPR_CHARS]
                + f"... ({len(text) - MAX_REPR_CHARS} more characters; --output FILE keeps it all)")
    console.print(text, markup=False, highlight=False, soft_wrap=True)


@app.command()
def result(
    name: Annotated[
        str,
        typer.Argument(help="The step's job: a Vertex job id or resource name, or a Cloud Run "
                       "execution id or resource name (the caller logs it)."),
    ],
    kind: KindOption = None,
    project: ProjectOption = None,
    region: RegionOption = None,
    wait: Annotated[
        bool, typer.Option(help="Wait for a step that is still running (Ctrl-C stops waiting "
                           "and leaves it running).")
    ] = True,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the returned value to this file, pickled.",
                     dir_okay=False),
    ] = None,
    emulator: EmulatorOption = False,
) -> None:
    """Print the outcome of a remote step: its return value, or the exception it raised."""
    import asyncio

    from gcpjobs.cli.resolve import announced_target, is_gone, recall
    from gcpjobs.errors import GcpJobsError, RemoteStepError
    from gcpjobs.steps.outcome import RemoteTraceback
    from gcpjobs.steps.payload import first_line
    from gcpjobs.steps.remote import fetch_result

    use_emulator(emulator)
    if output is not None and not output.parent.is_dir():
        raise typer.BadParameter(f"{str(output.parent)!r} is not a directory; give a file in an "
                                 "existing directory", param_hint="--output")
    asyncio.run(announced_target(kind, project, region))
    try:
        try:
            value = fetch_result(
                name, kind=kind, project=project, region=region or "us-central1", wait=wait
            )
        except GcpJobsError as error:
            if not is_gone(error):
                raise
            value = _recorded_result(recall(name, kind, project, region, error))
    except RemoteStepError as error:
        if error.remote_traceback:
            err_console.print(error.remote_traceback.rstrip(), markup=False, highlight=False,
                              soft_wrap=True)
        raise
    except Exception as error:
        if not isinstance(error.__cause__, RemoteTraceback):
            raise
        # The step's own exception, raised again here: the job's traceback says where.
        err_console.print(error.__cause__.text.rstrip(), markup=False, highlight=False,
                          soft_wrap=True)
        err_console.print(f"error: the remote step raised {type(error).__name__}: "
                          f"{first_line(str(error))}",
                          style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_RAISED) from None
    _show(value, output)


def _recorded_result(record: RunRecord) -> Any:
    """The outcome of a step whose job is gone, from what the run history kept of it: where
    the outcome is, and which secret version holds the key that verifies it."""
    from gcpjobs.clients.target import resolve_target
    from gcpjobs.errors import GcpJobsError
    from gcpjobs.results import JobResult
    from gcpjobs.steps.keys import KeyVault
    from gcpjobs.steps.outcome import read_outcome
    from gcpjobs.steps.store import check_store_url, open_store, split_run_url

    if record.step is None:
        raise GcpJobsError(f"job {record.name} was not a gcpjobs remote step (the local run "
                           "history holds no outcome for it)")
    try:
        store_url, run_id = split_run_url(record.step.run_url)
    except ValueError as error:
        raise GcpJobsError(f"job {record.name} is not a gcpjobs remote step ({error})") from None
    store = open_store(check_store_url(store_url, field=f"the store of job {record.name}"))
    vault = KeyVault(resolve_target(project=record.project or None))
    try:
        key = vault.read(record.step.key_secret)
    finally:
        vault.close()
    received = read_outcome(store, run_id, key, JobResult(record.status),
                            what=f"the remote step of job {record.name}")
    return received.unwrap()
