"""A remote step's job: submitted once, followed to its end, cancelled when the caller is, and
found again from its name.

Cancellation: if the caller's task is cancelled (Ctrl-C, `task.cancel()`), the job is
cancelled before the cancellation goes on, also when it comes while the create is still in
flight (the create is let finish, so that there is a name to cancel).

Finding a step again (`step_record`): its job record holds all that is needed to read the
outcome, the run's URL (the job's only argument) and the name of the Secret Manager version
that holds the key (in its environment; the key itself is read from there, keys.py).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from gcpjobs.clients.protocol import JobClient
from gcpjobs.errors import GcpJobsError
from gcpjobs.results import JobResult, JobStatus
from gcpjobs.steps.payload import ENTRYPOINT_MODULE
from gcpjobs.steps.signing import KEY_SECRET_ENV

logger = logging.getLogger("gcpjobs.steps")

# How long a cancelled caller lets an in-flight create finish, to cancel what it made.
CREATE_GRACE_SECONDS = 30.0


async def cancel_quietly(client: JobClient, name: str) -> None:
    """Ask the service to cancel `name`; a failure is logged, not raised (the caller is
    already on its way out with the cancellation)."""
    try:
        await asyncio.shield(client.cancel(name))
        logger.warning("remote step cancelled: asked the service to cancel job %s", name)
    except (GcpJobsError, asyncio.CancelledError) as error:
        logger.warning("could not cancel job %s: %s; cancel it with `gcpjobs cancel %s`",
                       name, error or type(error).__name__, name)


async def submit(client: JobClient, spec: Any, submission_id: str) -> JobStatus:
    creating = asyncio.ensure_future(client.create(spec, submission_id=submission_id))
    try:
        return await asyncio.shield(creating)
    except asyncio.CancelledError:
        try:
            status = await asyncio.wait_for(creating, CREATE_GRACE_SECONDS)
        except Exception as error:  # it failed or took too long: nothing known to cancel
            logger.warning("cancelled while creating the job of submission %s (%s)",
                           submission_id, error)
        else:
            await cancel_quietly(client, status.name)
        raise


async def wait_or_cancel(client: JobClient, status: JobStatus) -> JobResult:
    """The job's end; if the waiting is cancelled, the job is cancelled too."""
    try:
        return await client.wait(status.name, known=status)
    except asyncio.CancelledError:
        await cancel_quietly(client, status.name)
        raise


async def finish_quietly(client: JobClient, spec: Any, name: str) -> None:
    """What the service keeps after the run (a Cloud Run Job not kept is deleted); a failure
    is logged, not raised: it must not take the step's outcome from the caller."""
    try:
        await client.finish(spec, name)
    except GcpJobsError as error:
        logger.warning("remote step job %s ended, but cleaning up after it failed: %s", name,
                       error)


# ----------------------------------------------------------------------- finding it again


@dataclass(frozen=True)
class StepRecord:
    run_url: str
    key_secret: str  # the Secret Manager version holding the key


def record_from_container(
    name: str, command: list[str], args: list[str], env: dict[str, str]
) -> StepRecord:
    """The step behind a job's container, or a one-line error if it is not a step's."""
    if command[-2:] != ["-m", ENTRYPOINT_MODULE] or len(args) != 1:
        raise GcpJobsError(
            f"job {name} is not a gcpjobs remote step (its command is not `python -m "
            f"{ENTRYPOINT_MODULE} RUN_URL`); `gcpjobs status {name}` shows how it ended"
        )
    key_secret = env.get(KEY_SECRET_ENV, "")
    if "/secrets/" not in key_secret or "/versions/" not in key_secret:
        raise GcpJobsError(f"job {name} names no step key secret ({KEY_SECRET_ENV}); its "
                           "outcome cannot be verified (a step made by an older gcpjobs?)")
    return StepRecord(run_url=args[0], key_secret=key_secret)


async def step_record(client: JobClient, name: str) -> tuple[str, StepRecord]:
    """The job's full name and its step record, read from the service."""
    await asyncio.to_thread(lambda: client.target)  # may start the embedded emulator
    full = client.resource_name(name)
    container = await client.container(full)
    return full, record_from_container(full, list(container.command), list(container.args),
                                       dict(container.env))
