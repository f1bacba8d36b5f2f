"""Output without newlines is cut into Cloud Logging-sized entries as it streams (issue 11,
finding 8): a job printing 200 MB without a newline made one entry of 200 MB and grew the
emulator by 1 GB, since a replica's output was read a line at a time."""

from __future__ import annotations

import threading

import psutil
import pytest
from google.cloud import aiplatform_v1

from gcpjobs.emulator.executor import MAX_ENTRY_BYTES, split_output
from gcpjobs.emulator.process import EmulatorProcess
from tests.conftest import grpc_client
from tests.emulator.logging.support import grpc_logging, list_texts
from tests.emulator.support import PARENT, PROJECT, PYTHON, custom_job, wait_until

EURO = "€".encode()  # 3 bytes
GRIN = "😀".encode()  # 4 bytes

# --------------------------------------------------------------------------- split_output


def test_a_newline_ends_an_entry_and_a_carriage_return_before_it_is_dropped() -> None:
    assert split_output(b"one\r\ntwo\nthree", final=False) == ([b"one", b"two"], b"three")


def test_a_carriage_return_split_from_its_newline_by_a_read_is_still_dropped() -> None:
    entries, rest = split_output(b"one\r", final=False)
    assert (entries, rest) == ([], b"one\r")
    assert split_output(rest + b"\n", final=False) == ([b"one"], b"")


def test_a_lone_carriage_return_does_not_end_an_entry() -> None:
    progress = b"".join(b"\r%3d%%" % percent for percent in range(0, 101, 10))
    assert split_output(progress, final=False) == ([], progress)
    assert split_output(progress, final=True) == ([progress], b"")


def test_a_run_of_exactly_the_limit_waits_for_what_follows_it() -> None:
    full = b"x" * MAX_ENTRY_BYTES
    # It may still end with a newline, making one entry of exactly the limit.
    assert split_output(full, final=False) == ([], full)
    assert split_output(full + b"\n", final=False) == ([full], b"")
    assert split_output(full + b"\r\n", final=False) == ([full], b"")  # not one and then ""
    assert split_output(full, final=True) == ([full], b"")
    # A carriage return after it may be the start of "\r\n": the next read decides.
    entries, rest = split_output(full + b"\r", final=False)
    assert (entries, rest) == ([], full + b"\r")
    assert split_output(rest + b"\n", final=False) == ([full], b"")
    assert split_output(rest + b"10%", final=False) == ([full], b"\r10%")
    assert split_output(full + b"\r", final=True) == ([full, b"\r"], b"")


def test_a_run_over_the_limit_is_cut_into_pieces_of_the_limit() -> None:
    data = b"x" * (2 * MAX_ENTRY_BYTES + 5)
    entries, rest = split_output(data, final=False)
    assert entries == [b"x" * MAX_ENTRY_BYTES] * 2
    assert rest == b"x" * 5
    assert split_output(rest, final=True) == ([b"x" * 5], b"")


def test_the_final_piece_is_an_entry_and_an_ended_stream_leaves_nothing() -> None:
    assert split_output(b"last words", final=True) == ([b"last words"], b"")
    assert split_output(b"line\n", final=True) == ([b"line"], b"")  # no empty entry after it
    assert split_output(b"", final=True) == ([], b"")


@pytest.mark.parametrize("character", [EURO, GRIN, "é".encode()], ids=["3 bytes", "4 bytes", "2 bytes"])
@pytest.mark.parametrize("before_the_cut", [1, 2, 3])
def test_a_character_across_the_cut_is_never_split(character: bytes, before_the_cut: int) -> None:
    """The character starts `before_the_cut` bytes before the limit: the piece ends before it
    (shorter than the limit) when it would not fit, and every piece is valid UTF-8."""
    data = b"x" * (MAX_ENTRY_BYTES - before_the_cut) + character + b"y" * MAX_ENTRY_BYTES
    entries, rest = split_output(data, final=True)
    assert rest == b""
    assert b"".join(entries) == data
    assert all(len(entry) <= MAX_ENTRY_BYTES for entry in entries)
    for entry in entries:
        entry.decode("utf-8")  # strict: a split character raises
    fits = before_the_cut >= len(character)
    assert len(entries[0]) == (MAX_ENTRY_BYTES if fits else MAX_ENTRY_BYTES - before_the_cut)


def test_bytes_that_are_not_utf8_are_cut_at_the_limit_and_all_kept() -> None:
    """A binary dump of continuation bytes has no character boundary to move the cut to."""
    data = b"\x80" * (2 * MAX_ENTRY_BYTES + 1)
    entries, rest = split_output(data, final=True)
    assert [len(entry) for entry in entries] == [MAX_ENTRY_BYTES, MAX_ENTRY_BYTES, 1]
    assert b"".join(entries) == data and rest == b""


# ----------------------------------------------------------------------- through a real job

# What the job prints, and the test rebuilds: progress redrawn with lone carriage returns, then
# characters of 1 to 4 bytes (10 bytes a round, so the 256 KB cuts fall at every offset inside
# them), never a newline. Written in pieces of a prime size, so pipe reads split characters too.
PRINTED = """
def printed(megabytes):
    progress = ''.join(f'\\r{step:8d} of 1000' for step in range(1000))
    return progress + 'aé€😀' * (megabytes * (1 << 20) // 10)
"""
PRINTED_MEGABYTES = 32
JOB = PRINTED + f"""
import sys
data = printed({PRINTED_MEGABYTES}).encode()
for start in range(0, len(data), 99_991):
    sys.stdout.buffer.write(data[start:start + 99_991])
    sys.stdout.buffer.flush()
"""
# Reading a line at a time held the whole output (twice: bytes, then text) and its JSON line.
# Cut as it streams, the emulator holds a piece or two per stream whatever the job prints.
GROWTH_LIMIT = PRINTED_MEGABYTES * (1 << 20) // 2
# The largest page there is (gcpjobs' own reader asks for it): 1,000 entries of 256 KB would
# be past the official client's 4 MB gRPC message limit, so the emulator stops a page short
# of 3 MiB ("Received message larger than max" before).
PAGE_SIZE = 1000


def _expected_text() -> str:
    namespace: dict[str, object] = {}
    exec(PRINTED, namespace)  # the very code the job runs
    printed = namespace["printed"]
    assert callable(printed)
    text: str = printed(PRINTED_MEGABYTES)
    return text


class _PeakMemory:
    """The highest resident memory of a process, sampled in a thread until stopped."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self.baseline = self._process.memory_info().rss
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="peak-memory", daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> _PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def test_output_without_newlines_is_kept_whole_in_entries_of_at_most_256_kb_in_bounded_memory(
    emulator: EmulatorProcess,
) -> None:
    jobs = grpc_client(emulator)
    with _PeakMemory(emulator.pid) as memory:
        created = jobs.create_custom_job(parent=PARENT, custom_job=custom_job([PYTHON, "-c", JOB]))
        finished = wait_until(jobs, created.name, timeout=90)
    jobs.transport.close()
    assert finished.state == aiplatform_v1.JobState.JOB_STATE_SUCCEEDED, finished.error
    growth = memory.peak - memory.baseline
    assert growth < GROWTH_LIMIT, (
        f"the emulator grew by {growth / (1 << 20):.0f} MB while a job printed "
        f"{PRINTED_MEGABYTES} MB without a newline")

    job_id = created.name.rsplit("/", 1)[-1]
    logging = grpc_logging(emulator)
    entries = list_texts(
        logging, PROJECT,
        f'resource.labels.job_id="{job_id}" AND logName="projects/{PROJECT}/logs/workerpool0-0"',
        page_size=PAGE_SIZE)
    logging.transport.close()
    texts = [entry.text_payload for entry in entries]
    sizes = [len(text.encode()) for text in texts]
    assert max(sizes) <= MAX_ENTRY_BYTES
    assert len(texts) >= PRINTED_MEGABYTES * 4  # 256 KB pieces, not one entry
    # Every byte printed, in order, and no character split (a split one would read as U+FFFD).
    joined = "".join(texts)
    assert "\ufffd" not in joined
    assert joined == _expected_text()
