"""Hostile filters answer promptly, correctly, and never freeze the emulator (issue 11, finding 2).

Before the fix, `display_name:"*a*a*a*a*a*b"` over a 128-character name took 16 s in a
backtracking regex that held the GIL (every other call, stats included, waited); one more `*a`
ran for minutes. Logging's `textPayload=~"^(a+)+$"` doubled with each character. Now wildcards
are matched by a linear scan and Logging regexes run on RE2; what RE2 refuses, and filters over
the length or nesting limits, are INVALID_ARGUMENT. All through the official clients.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any

import pytest
from google.api_core import exceptions
from google.cloud import aiplatform_v1

from gcpjobs.emulator.process import EmulatorProcess
from tests.conftest import client_for, grpc_client
from tests.emulator.logging.support import grpc_logging, list_texts, rest_logging
from tests.emulator.support import (
    PARENT,
    PROJECT,
    PYTHON,
    custom_job,
    process_gone,
    wait_until,
)
from tests.waiting import wait_for

LONG_NAME = "a" * 128  # Vertex's maximum display name length
FIVE_STARS_THEN_B = 'display_name:"*a*a*a*a*a*b"'  # the 16 s finding: no match
TWELVE_STARS = 'display_name:"' + "*a" * 12 + '"'  # a match (found fast even by a backtracker)
# The worst case: twelve `*a` and a `*b` that never comes. A backtracking regex tries every way
# of placing the a's before giving up (one more `*a` than the finding already ran for minutes).
TWELVE_STARS_THEN_B = 'display_name:"' + "*a" * 12 + '*b"'
# Generous: today's code blew through these by minutes; a busy machine still answers in them.
PROMPT = 20.0


@pytest.fixture()
def long_named(emulator_process_factory: Callable[..., EmulatorProcess]) -> tuple[EmulatorProcess, str]:
    """A private emulator holding one job named with 128 a's (and one other job)."""
    server = emulator_process_factory()
    client = grpc_client(server)
    try:
        job = client.create_custom_job(parent=PARENT, custom_job=custom_job(display_name=LONG_NAME))
        client.create_custom_job(parent=PARENT, custom_job=custom_job(display_name="other"))
    finally:
        client.transport.close()
    return server, job.name


def _names(client: aiplatform_v1.JobServiceClient, filter_: str) -> set[str]:
    request = aiplatform_v1.ListCustomJobsRequest(parent=PARENT, filter=filter_)
    return {job.display_name for job in client.list_custom_jobs(request=request, timeout=PROMPT)}


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_the_wildcard_findings_answer_promptly_and_right(
    long_named: tuple[EmulatorProcess, str], transport: str
) -> None:
    server, _ = long_named
    client = client_for(server, transport)
    try:
        assert _names(client, FIVE_STARS_THEN_B) == set()
        assert _names(client, TWELVE_STARS_THEN_B) == set()
        assert _names(client, TWELVE_STARS) == {LONG_NAME}
        assert _names(client, 'display_name:"' + "*a" * 12 + '*"') == {LONG_NAME}
        assert _names(client, 'display_name:"' + "*a" * 129 + '"') == set()  # more a's than the name
        assert _names(client, 'display_name:"a*a*a"') == {LONG_NAME}
        assert _names(client, 'display_name:"*aab"') == set()
        assert _names(client, 'display_name:"ot*r"') == {"other"}
    finally:
        client.transport.close()


def test_other_calls_are_answered_while_worst_case_filters_run(
    long_named: tuple[EmulatorProcess, str],
) -> None:
    """Four clients list with the worst filters over and over; meanwhile GetCustomJob and
    /_emulator/stats answer (each within a deadline the old code missed by minutes)."""
    server, name = long_named
    stop = threading.Event()
    failures: list[BaseException] = []
    answered = [0]

    def hostile() -> None:
        client = grpc_client(server)
        try:
            while not stop.is_set():
                assert _names(client, TWELVE_STARS_THEN_B + " OR " + FIVE_STARS_THEN_B) == set()
                answered[0] += 1
        except BaseException as error:  # reported by the test thread
            failures.append(error)
        finally:
            client.transport.close()

    threads = [threading.Thread(target=hostile, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    client = grpc_client(server)
    try:
        wait_for(lambda: answered[0] >= 1 or failures, timeout=PROMPT,
                 message="a worst-case list to be answered")
        for _ in range(5):
            assert client.get_custom_job(name=name, timeout=PROMPT).display_name == LONG_NAME
            assert server.stats()["requests"].get("JobService.ListCustomJobs", 0) >= 1
    finally:
        stop.set()
        for thread in threads:
            thread.join(PROMPT * 2)
        client.transport.close()
    assert not failures, failures


def test_sigterm_stops_the_emulator_while_hostile_filters_run(
    long_named: tuple[EmulatorProcess, str],
) -> None:
    server, _ = long_named
    stop = threading.Event()

    def hostile() -> None:
        client = grpc_client(server)
        try:
            while not stop.is_set():
                _names(client, TWELVE_STARS_THEN_B)
        except exceptions.GoogleAPIError:
            pass  # the emulator went away under it: expected
        finally:
            client.transport.close()

    threads = [threading.Thread(target=hostile, daemon=True) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: server.stats()["requests"].get("JobService.ListCustomJobs", 0) >= 3,
                 timeout=PROMPT, message="the hostile lists to be under way")
        os.kill(server.pid, signal.SIGTERM)
        wait_for(lambda: process_gone(server.pid), timeout=PROMPT,
                 message="the emulator to exit on SIGTERM")
    finally:
        stop.set()
        server.stop()  # reaps it
        for thread in threads:
            thread.join(PROMPT)


# ------------------------------------------------------------------------------- Logging


@pytest.fixture()
def a_run_of_as(emulator: EmulatorProcess) -> str:
    """A finished job whose one line is 5,000 a's and a b; returns its job id."""
    client = grpc_client(emulator)
    try:
        code = "print('a' * 5000 + 'b', flush=True)"
        job = client.create_custom_job(parent=PARENT, custom_job=custom_job([PYTHON, "-c", code]))
        wait_until(client, job.name, [aiplatform_v1.JobState.JOB_STATE_SUCCEEDED])
    finally:
        client.transport.close()
    return str(job.name).rsplit("/", 1)[-1]


def test_a_catastrophic_regex_runs_in_linear_time(emulator: EmulatorProcess, a_run_of_as: str) -> None:
    client = grpc_logging(emulator)
    try:
        scope = f'resource.labels.job_id="{a_run_of_as}" resource.labels.task_name="workerpool0-0"'

        def texts(filter_: str) -> list[str]:
            return [e.text_payload for e in list_texts(client, PROJECT, filter_)]

        wait_for(lambda: texts(scope), timeout=PROMPT, message="the job's line")
        assert texts(scope + ' textPayload=~"^(a+)+$"') == []  # the b breaks it: no match
        assert texts(scope + ' textPayload=~"^(a+)+b$"') == ["a" * 5000 + "b"]
        assert texts(scope + ' textPayload!~"^(a|aa)+$"') == ["a" * 5000 + "b"]
    finally:
        client.transport.close()


BAD_LOGGING_FILTERS: dict[str, tuple[str, str]] = {
    # name: (filter, a word the one-line message must contain)
    "backreference": (r'textPayload=~"(a)\\1"', "RE2"),
    "lookahead": ('textPayload=~"(?=a)a"', "RE2"),
    "lookbehind": ('textPayload!~"(?<=a)b"', "RE2"),
    "over-long": ('textPayload:"' + "x" * 20_000 + '"', "20000"),
    "over-deep": ("(" * 40 + 'textPayload:"x"' + ")" * 40, "nest"),
}


@pytest.mark.parametrize("case", sorted(BAD_LOGGING_FILTERS))
def test_refused_logging_filters_over_grpc(emulator: EmulatorProcess, case: str) -> None:
    filter_, word = BAD_LOGGING_FILTERS[case]
    client = grpc_logging(emulator)
    try:
        with pytest.raises(exceptions.InvalidArgument) as refused:
            list_texts(client, PROJECT, filter_)
    finally:
        client.transport.close()
    message = refused.value.message
    assert word in message and "\n" not in message, message


@pytest.mark.parametrize("case", sorted(BAD_LOGGING_FILTERS))
def test_refused_logging_filters_over_rest(emulator: EmulatorProcess, case: str) -> None:
    filter_, word = BAD_LOGGING_FILTERS[case]
    client: Any = rest_logging(emulator, PROJECT)
    with pytest.raises(exceptions.BadRequest) as refused:
        list(client.list_entries(resource_names=[f"projects/{PROJECT}"], filter_=filter_))
    assert word in refused.value.message, refused.value.message


BAD_VERTEX_FILTERS: dict[str, tuple[str, str]] = {
    # Over the emulator's 32,768 characters, yet short enough for a REST query string.
    "over-long": ('display_name:"' + "a" * 33_000 + '"', "maximum"),
    "over-deep": ("(" * 40 + "state=JOB_STATE_RUNNING" + ")" * 40, "nest"),
    "nul": ('display_name="a\x00b"', "NUL"),
}


@pytest.mark.parametrize("transport", ["grpc", "rest"])
@pytest.mark.parametrize("case", sorted(BAD_VERTEX_FILTERS))
def test_refused_vertex_filters(emulator: EmulatorProcess, case: str, transport: str) -> None:
    filter_, word = BAD_VERTEX_FILTERS[case]
    client = client_for(emulator, transport)
    try:
        with pytest.raises(exceptions.BadRequest) as refused:  # InvalidArgument over gRPC
            list(client.list_custom_jobs(
                request=aiplatform_v1.ListCustomJobsRequest(parent=PARENT, filter=filter_)))
    finally:
        client.transport.close()
    assert word in refused.value.message and "\n" not in refused.value.message, refused.value.message
    if transport == "grpc":
        assert isinstance(refused.value, exceptions.InvalidArgument)
