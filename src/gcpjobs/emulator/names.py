"""Resource names the emulator serves, checked before any use, and the paths built from them.

Every method of every service splits its `parent` / `name` here, so a name is refused the same
way over gRPC and REST, in create, get, list, update, delete, cancel, run and the operations:

* **Shape.** `projects/P/locations/L/...` with exactly the collections the method names and no
  empty segment; anything else is INVALID_ARGUMENT naming the expected pattern.
* **Location first.** Google routes a request by its region (`us-central1-aiplatform...`), so
  a location that is not a region is refused before the project is looked at. The emulator
  accepts any well-formed region (`us-central1`, `europe-west4`, `me-central2`: the shape
  `[a-z]+-[a-z]+[0-9]+`, at most 63 characters), not only the regions that exist.
* **Project.** A project id (6-30 lowercase letters, digits and hyphens, starting with a letter
  and not ending with a hyphen, optionally `domain:` scoped) or a project number, the rules
  `gcpjobs.specs.container.check_project` applies to job specs. A malformed one is
  INVALID_ARGUMENT "Invalid project resource name projects/..." (Google's wording for a
  malformed project name); a well-formed one that the emulator has never seen is simply empty
  (the real services answer an unknown project with PERMISSION_DENIED, which the emulator,
  having no projects, cannot tell apart).
* **Resource ids.** CustomJob ids are numbers (up to 19 digits, as the real ids are); Cloud Run
  job and execution ids follow `cloudrun.validation.job_id_problem` (lowercase letters, digits
  and '-', starting with a letter, at most 63 characters); Cloud Run task ids are the
  execution's id and `-task` and the task's index (`job-x7k2p-task0`, the ids Cloud Run's own
  messages name); operation ids are the digits or the UUIDs the emulator issues. Each is INVALID_ARGUMENT when malformed and NOT_FOUND when
  well-formed but absent (the services say so).

Defence in depth: `path_under` is how a path is built from name segments; it refuses a segment
that is not a plain file name and a result that does not resolve inside its root, so a name
that slipped past the checks above still cannot make the emulator write outside DATA_DIR.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from gcpjobs.emulator.errors import invalid
from gcpjobs.errors import SpecError
from gcpjobs.specs.base import shown
from gcpjobs.specs.container import check_project, check_region

MAX_LOCATION_CHARS = 63
# CustomJob ids: the real ones are 18-19 digit numbers (reference §1.1); int64 has 19.
_CUSTOM_JOB_ID = re.compile(r"[0-9]{1,19}\Z")
# The emulator's operation ids are Vertex numbers and Cloud Run UUIDs; any other plain id is
# not malformed, only unknown (NOT_FOUND, as Google answers).
_OPERATION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}\Z")
# A Cloud Run task id: EXECUTION-taskINDEX (an index is below 10,000, the task count limit).
_TASK_ID = re.compile(r"(?P<execution>[a-z][a-z0-9-]{0,62})-task(?P<index>0|[1-9][0-9]{0,3})\Z")
# A name segment that is safe as one file name: no separator, no dot segment, no NUL.
_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,254}\Z")  # ':': example.com:proj


def split_name(name: str, collections: Sequence[str], *, pattern: str, what: str) -> list[str]:
    """The ids of `name` for its collections: `projects/P/locations/L` with ("projects",
    "locations") is [P, L]. INVALID_ARGUMENT when the shape differs or an id is empty;
    `pattern` is what the message says a name looks like, `what` the kind of name."""
    parts = name.split("/")
    ids = parts[1::2]
    if (len(parts) != 2 * len(collections) or parts[0::2] != list(collections)
            or not all(ids)):
        raise invalid(f"Invalid {what} {quoted(name)}: expected {pattern}.")
    return ids


def check_project_and_location(project: str, location: str, *, service: str) -> None:
    """INVALID_ARGUMENT unless `location` is a region and `project` a project id or number."""
    check_location(location, service=service)
    check_project_id(project)


def check_project_id(project: str) -> None:
    """INVALID_ARGUMENT unless `project` is a project id or number."""
    try:
        check_project(project)
    except SpecError as error:
        raise invalid(f"Invalid project resource name {quoted('projects/' + project)}: "
                      f"{error.reason}, or a project number.") from None


def check_location(location: str, *, service: str) -> None:
    try:
        if len(location) > MAX_LOCATION_CHARS:
            raise SpecError("too long")
        check_region(location)
    except SpecError:
        raise invalid(f"Location {quoted(location)} is not a {service} region; use one such as "
                      '"us-central1".') from None


def location_name(name: str, *, service: str, what: str = "parent") -> tuple[str, str]:
    """`projects/P/locations/L` → (P, L), both checked."""
    project, location = split_name(
        name, ("projects", "locations"), what=what,
        pattern="projects/{project}/locations/{location}",
    )
    check_project_and_location(project, location, service=service)
    return project, location


def check_custom_job_id(job_id: str) -> None:
    if not _CUSTOM_JOB_ID.match(job_id):
        raise invalid(f"Invalid CustomJob id {quoted(job_id)}: CustomJob ids are numbers.")


def split_task_id(task_id: str) -> tuple[str, int]:
    """`job-x7k2p-task3` → ("job-x7k2p", 3); INVALID_ARGUMENT unless it has that shape."""
    match = _TASK_ID.match(task_id)
    if match is None:
        raise invalid(f"Invalid task id {quoted(task_id)}: task ids are the execution's id, "
                      "'-task' and the task's index, such as \"my-job-x7k2p-task0\".")
    return match["execution"], int(match["index"])


def check_operation_id(operation_id: str) -> None:
    if not _OPERATION_ID.match(operation_id):
        raise invalid(f"Invalid operation id {quoted(operation_id)}: operation ids are "
                      "letters, digits, '-' and '_', at most 128 characters.")


def is_plain_segment(text: str) -> bool:
    """Whether `text` can be one file name under a directory (no '/', '..', NUL, glob chars)."""
    return bool(_PLAIN_SEGMENT.match(text)) and text not in (".", "..") and ".." not in text


def path_under(root: Path, *segments: str) -> Path:
    """`root / segment / ...`, refused (ValueError) unless every segment is a plain file name
    and the result resolves inside `root`."""
    for segment in segments:
        if not is_plain_segment(segment):
            raise ValueError(f"{shown(segment)} cannot be part of a path under {root}")
    path = root.joinpath(*segments)
    if not path.resolve().is_relative_to(root.resolve()):
        raise ValueError(f"{path} is outside {root}")
    return path


def quoted(text: str, limit: int = 80) -> str:
    """A user's name in double quotes, escaped (JSON) and cut short, so that a name with a
    newline, a NUL or 300 characters still makes a one-line message of sensible length."""
    cut = text if len(text) <= limit else text[: limit - 3] + "..."
    return json.dumps(cut, ensure_ascii=False)
