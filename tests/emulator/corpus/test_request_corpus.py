"""The REST port's bad-request corpus, raw bytes on a real socket: resource names in URLs and
bodies, page tokens, page sizes, query parameters of the wrong type and a request just over
Google's 10 MiB, on the Vertex, Cloud Run, Operations, Logging and Secret Manager routes
(issue 11, finding 5 and the bad-input corpus). Every case is a Google JSON error with the
right HTTP status, gRPC status and wording, and the emulator serves the next request.

The official clients refuse some of these themselves (google-api-core will not put `..` in a
URL, tests/emulator/test_names.py and cloudrun/test_names.py), so only a raw request shows
what the server does with them. HTTP framing, JSON bodies, hosts and admin bodies are in
test_http_corpus.py; filters in test_filter_corpus.py.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from gcpjobs.emulator.process import EmulatorProcess
from tests.emulator.corpus.support import assert_google_error, assert_still_serving, call

V = "/v1/projects/gcpjobs-test/locations/us-central1"
R = "/v2/projects/gcpjobs-test/locations/us-central1"
SECRETS = "/v1/projects/gcpjobs-test/secrets"
ENTRIES = "/v2/entries:list"
# A project of this module's own, so that its two jobs make a page token of a real listing
# without appearing in any other test's lists.
PAGES_PROJECT = "corpus-pages"
PAGES = f"/v2/projects/{PAGES_PROJECT}/locations/us-central1"
LONG = "p" * 300
JOB = {"template": {"template": {"containers": [{"image": "img", "command": ["true"]}]}}}

BAD_PROJECT = "Invalid project resource name"
NOT_A_REGION = "region; use one such as"
JOB_ID = "Invalid job id"
EXECUTION_ID = "Invalid execution id"
CUSTOM_JOB_ID = "CustomJob ids are numbers"
OPERATION_ID = "Invalid operation id"
SECRET_NAME = "Invalid resource field value in the request"
NO_URL = "was not found"
NOT_OURS = "Invalid page_token: it is not a token this server issued or it was altered"
OTHER_LIST = "Invalid page_token: it was issued for a different list request"
OTHER_FILTER = "Invalid page_token: it was issued for a different filter"
NEGATIVE = "must not be negative"
BAD_NUMBER = "Invalid JSON payload received. Failed to parse pageSize field"

# (id, method, path, JSON body or None, HTTP status, Google status, words in the message)
Case = tuple[str, str, str, Any, int, str, str]


def _bad(case: str, method: str, path: str, words: str, body: Any = None) -> Case:
    return (case, method, path, body, 400, "INVALID_ARGUMENT", words)


def _missing(case: str, method: str, path: str, words: str, body: Any = None) -> Case:
    return (case, method, path, body, 404, "NOT_FOUND", words)


# A '%2F' inside an id is decoded before the route is matched, so the id becomes two segments
# and no route matches: 404, as for any URL the API does not have (an empty segment, a
# trailing slash). Google's HTTP mapping would decode it into the id and refuse that instead.
NAME_CASES: list[Case] = [
    # ---- Vertex
    _bad("vertex project ..", "GET", "/v1/projects/../locations/us-central1/customJobs", BAD_PROJECT),
    _bad("vertex project %2e%2e", "GET", "/v1/projects/%2e%2e/locations/us-central1/customJobs",
         BAD_PROJECT),
    _bad("vertex project %2E%2E", "GET", "/v1/projects/%2E%2E/locations/us-central1/customJobs",
         BAD_PROJECT),
    _bad("vertex project %00", "GET", "/v1/projects/gcpjobs%00test/locations/us-central1/customJobs",
         BAD_PROJECT),
    _bad("vertex project 300 characters", "GET", f"/v1/projects/{LONG}/locations/us-central1/customJobs",
         BAD_PROJECT),
    _bad("vertex project unicode", "GET", "/v1/projects/proj%C3%A9-unicode/locations/us-central1/customJobs",
         BAD_PROJECT),
    _bad("vertex project upper case", "GET", "/v1/projects/GCPJOBS-TEST/locations/us-central1/customJobs",
         BAD_PROJECT),
    _bad("vertex create under ..", "POST", "/v1/projects/%2e%2e/locations/us-central1/customJobs",
         BAD_PROJECT, {"displayName": "x"}),
    _bad("vertex location ..", "GET", "/v1/projects/gcpjobs-test/locations/../customJobs", NOT_A_REGION),
    _bad("vertex location %2E%2E", "GET", "/v1/projects/gcpjobs-test/locations/%2E%2E/customJobs",
         NOT_A_REGION),
    _bad("vertex job ..", "GET", f"{V}/customJobs/..", CUSTOM_JOB_ID),
    _bad("vertex job %2E%2E", "GET", f"{V}/customJobs/%2E%2E", CUSTOM_JOB_ID),
    _bad("vertex job %00", "GET", f"{V}/customJobs/12%003", CUSTOM_JOB_ID),
    _bad("vertex cancel ..", "POST", f"{V}/customJobs/..:cancel", CUSTOM_JOB_ID, {}),
    _bad("vertex delete %2e%2e", "DELETE", f"{V}/customJobs/%2e%2e", CUSTOM_JOB_ID),
    _missing("vertex job %2F", "GET", f"{V}/customJobs/1%2F2", NO_URL),
    _missing("vertex empty project", "GET", "/v1/projects//locations/us-central1/customJobs", NO_URL),
    _missing("vertex empty segment", "GET", f"{V}//customJobs", NO_URL),
    _missing("vertex trailing slash", "GET", f"{V}/customJobs/", NO_URL),
    _missing("vertex empty job id", "GET", f"{V}/customJobs//1", NO_URL),
    _missing("vertex job of nothing", "GET", f"{V}/customJobs/123456789012345678",
             "The CustomJob does not exist."),
    # ---- Cloud Run
    _bad("run project ..", "GET", "/v2/projects/../locations/us-central1/jobs", BAD_PROJECT),
    _bad("run project %2E%2E", "POST", "/v2/projects/%2E%2E/locations/us-central1/jobs?jobId=x",
         BAD_PROJECT, JOB),
    _bad("run project and location %2e%2e", "GET", "/v2/projects/%2e%2e/locations/%2E%2E/jobs",
         NOT_A_REGION),
    _bad("run create under ../..", "POST", "/v2/projects/../locations/../jobs?jobId=escape",
         NOT_A_REGION, JOB),
    _bad("run project %00", "GET", "/v2/projects/gcpjobs%00test/locations/us-central1/jobs", BAD_PROJECT),
    _bad("run project 300 characters", "GET", f"/v2/projects/{LONG}/locations/us-central1/jobs",
         BAD_PROJECT),
    _bad("run project unicode", "GET", "/v2/projects/proj%C3%A9-unicode/locations/us-central1/jobs",
         BAD_PROJECT),
    _bad("run location not a region", "GET", "/v2/projects/gcpjobs-test/locations/not-a-region/jobs",
         NOT_A_REGION),
    _bad("run job id ..", "POST", f"{R}/jobs?jobId=..", JOB_ID, JOB),
    _bad("run job id %2e%2e", "POST", f"{R}/jobs?jobId=%2e%2e", JOB_ID, JOB),
    _bad("run job id %2F", "POST", f"{R}/jobs?jobId=a%2Fb", JOB_ID, JOB),
    _bad("run job id %00", "POST", f"{R}/jobs?jobId=a%00b", JOB_ID, JOB),
    _bad("run job id 64 characters", "POST", f"{R}/jobs?jobId={'j' * 64}", JOB_ID, JOB),
    _bad("run job id missing", "POST", f"{R}/jobs", JOB_ID, JOB),
    _bad("run get ..", "GET", f"{R}/jobs/..", JOB_ID),
    _bad("run get %2E%2E", "GET", f"{R}/jobs/%2E%2E", JOB_ID),
    _bad("run get %00", "GET", f"{R}/jobs/a%00b", JOB_ID),
    _bad("run get upper case", "GET", f"{R}/jobs/UPPER", JOB_ID),
    _bad("run run ..", "POST", f"{R}/jobs/..:run", JOB_ID, {}),
    _bad("run run %2e%2e", "POST", f"{R}/jobs/%2e%2e:run", JOB_ID, {}),
    _bad("run update ..", "PATCH", f"{R}/jobs/..", JOB_ID, JOB),
    _bad("run delete ..", "DELETE", f"{R}/jobs/..", JOB_ID),
    _bad("run executions of ..", "GET", f"{R}/jobs/../executions", JOB_ID),
    _bad("run execution ..", "GET", f"{R}/jobs/x/executions/..", EXECUTION_ID),
    _bad("run cancel %2e%2e", "POST", f"{R}/jobs/x/executions/%2e%2e:cancel", EXECUTION_ID, {}),
    _bad("run delete execution %2E%2E", "DELETE", f"{R}/jobs/x/executions/%2E%2E", EXECUTION_ID),
    _bad("run tasks of ..", "GET", f"{R}/jobs/x/executions/../tasks", EXECUTION_ID),
    _bad("run task ..", "GET", f"{R}/jobs/x/executions/x-abcde/tasks/..", "Invalid task id"),
    _missing("run job %2F", "GET", f"{R}/jobs/a%2Fb", NO_URL),
    _missing("run empty job id", "GET", f"{R}/jobs//executions", NO_URL),
    _missing("run trailing slash", "GET", f"{R}/jobs/", NO_URL),
    _missing("run job of nothing", "GET", f"{R}/jobs/no-such-job",
             "Resource 'no-such-job' of kind 'JOB' in region 'us-central1' in project "
             "'gcpjobs-test' does not exist."),
    _missing("run execution of nothing", "GET", f"{R}/jobs/x/executions/x-abcde",
             "Resource 'x-abcde' of kind 'EXECUTION' in region 'us-central1'"),
    # ---- Operations (Vertex v1 and Cloud Run v2 share one registry)
    _bad("operation ..", "GET", f"{V}/operations/..", OPERATION_ID),
    _bad("operation %2e%2e", "GET", f"{V}/operations/%2e%2e", OPERATION_ID),
    _bad("operation %00", "GET", f"{V}/operations/a%00", OPERATION_ID),
    _bad("operations of project ..", "GET", "/v1/projects/../locations/us-central1/operations", BAD_PROJECT),
    _bad("v2 operation %2E%2E", "GET", f"{R}/operations/%2E%2E", OPERATION_ID),
    _bad("v2 wait ..", "POST", f"{R}/operations/..:wait", OPERATION_ID, {}),
    _bad("v2 delete operation ..", "DELETE", f"{R}/operations/..", OPERATION_ID),
    _bad("v2 operations of location ..", "GET", "/v2/projects/gcpjobs-test/locations/../operations",
         "is not a Google Cloud region"),
    _missing("v2 operation of nothing", "GET", f"{R}/operations/00000000-0000-0000-0000-000000000000",
             "The Operation does not exist."),
    # ---- Logging: names in the body
    _bad("logging project ..", "POST", ENTRIES, BAD_PROJECT, {"resourceNames": ["projects/.."]}),
    _bad("logging project NUL", "POST", ENTRIES, BAD_PROJECT, {"resourceNames": ["projects/a\x00bcdefg"]}),
    _bad("logging project 300 characters", "POST", ENTRIES, BAD_PROJECT,
         {"resourceNames": [f"projects/{LONG}"]}),
    _bad("logging project upper case", "POST", ENTRIES, BAD_PROJECT,
         {"resourceNames": ["projects/GCPJOBS-TEST"]}),
    _bad("logging project unicode", "POST", ENTRIES, BAD_PROJECT,
         {"resourceNames": ["projects/projé-unicode"]}),
    _bad("logging name with ..", "POST", ENTRIES, "Invalid resource name",
         {"resourceNames": ["projects/gcpjobs-test/../x"]}),
    _bad("logging folder ..", "POST", ENTRIES, "Invalid resource name", {"resourceNames": ["folders/.."]}),
    _bad("logging empty name", "POST", ENTRIES, "Invalid resource name", {"resourceNames": [""]}),
    _bad("logging no names", "POST", ENTRIES, "resource_names is required", {"resourceNames": []}),
    # ---- Secret Manager
    _bad("secrets of project ..", "GET", "/v1/projects/../secrets", SECRET_NAME),
    _bad("secrets of project %2e%2e", "GET", "/v1/projects/%2e%2e/secrets", SECRET_NAME),
    _bad("secret ..", "GET", f"{SECRETS}/..", SECRET_NAME),
    _bad("secret %2E%2E", "GET", f"{SECRETS}/%2E%2E", SECRET_NAME),
    _bad("secret %00", "GET", f"{SECRETS}/a%00b", SECRET_NAME),
    _bad("create secret ..", "POST", f"{SECRETS}?secretId=..", "Invalid secret_id",
         {"replication": {"automatic": {}}}),
    _bad("add version to ..", "POST", f"{SECRETS}/..:addVersion", SECRET_NAME, {"payload": {"data": "eA=="}}),
    _bad("delete secret %2e%2e", "DELETE", f"{SECRETS}/%2e%2e", SECRET_NAME),
    _bad("version ..", "GET", f"{SECRETS}/s/versions/..:access", "must be a positive number or 'latest'"),
    _missing("secret %2F", "GET", f"{SECRETS}/a%2Fb", NO_URL),
    _missing("secret of nothing", "GET", f"{SECRETS}/no-such-corpus-secret",
             "Secret [projects/gcpjobs-test/secrets/no-such-corpus-secret] not found."),
]

# Every list the REST front serves: (name, path; None for Logging, whose list takes a body).
LISTS = [
    ("customJobs", f"{V}/customJobs"),
    ("jobs", f"{R}/jobs"),
    ("executions", f"{R}/jobs/-/executions"),
    ("v1 operations", f"{V}/operations"),
    ("v2 operations", f"{R}/operations"),
    ("secrets", SECRETS),
    ("entries", None),
]


def _list_case(case: str, list_path: str | None, field: str, value: Any, words: str) -> Case:
    """A list request with `field` set to `value`: a query parameter (sent as it is), or for
    Logging a body field (JSON)."""
    if list_path is None:
        return _bad(case, "POST", ENTRIES, words, {"resourceNames": ["projects/gcpjobs-test"], field: value})
    return _bad(case, "GET", f"{list_path}?{field}={value}", words)


JUNK_BASE64 = base64.urlsafe_b64encode(b"junk junk junk junk junk").decode().rstrip("=")
# A token's shape without its MAC: what a hand-made token looks like.
UNSIGNED = base64.urlsafe_b64encode(b'[1,0,"0000000000000000","0000000000000000"]' + b"\0" * 12).decode()
PAGE_SIZE_VALUES = [
    ("negative", "-1", -1, NEGATIVE),
    ("huge", "99999999999", 99999999999, BAD_NUMBER),
    ("not a number", "abc", "abc", BAD_NUMBER),
    ("a float", "1.5", 1.5, BAD_NUMBER),
]

PAGE_CASES: list[Case] = [
    *(_list_case(f"{name} token garbage", path, "pageToken", "garbage", NOT_OURS) for name, path in LISTS),
    *(_list_case(f"{name} token base64 of junk", path, "pageToken", JUNK_BASE64, NOT_OURS)
      for name, path in LISTS if name in ("customJobs", "jobs", "secrets", "entries")),
    *(_list_case(f"{name} token unsigned", path, "pageToken", UNSIGNED, NOT_OURS)
      for name, path in LISTS if name in ("customJobs", "v2 operations")),
    *(_list_case(f"{name} token 20,000 characters", path, "pageToken", "A" * 20_000, NOT_OURS)
      for name, path in LISTS if name in ("customJobs", "jobs", "entries")),
    *(_list_case(f"{name} pageSize {label}", path, "pageSize", raw if path else value, words)
      for name, path in LISTS for label, raw, value, words in PAGE_SIZE_VALUES),
    _bad("pageSize empty", "GET", f"{R}/jobs?pageSize=", BAD_NUMBER),
    _bad("pageSize %00", "GET", f"{V}/customJobs?pageSize=%00", BAD_NUMBER),
    _bad("pageSize twice, the last bad", "GET", f"{V}/customJobs?pageSize=1&pageSize=x", BAD_NUMBER),
    _bad("pageSize a quoted string in the body", "POST", ENTRIES, BAD_NUMBER,
         {"resourceNames": ["projects/gcpjobs-test"], "pageSize": "ten"}),
    # Other query parameters of the wrong type or name.
    _bad("showDeleted not a bool", "GET", f"{R}/jobs?showDeleted=maybe",
         "Failed to parse showDeleted field"),
    _bad("validateOnly not a bool", "DELETE", f"{R}/jobs/no-such-job?validateOnly=maybe",
         "Failed to parse validateOnly field"),
    _bad("an unknown query parameter", "GET", f"{V}/customJobs?nosuchparam=1", "has no field named"),
    _bad("a field of the response as a parameter", "GET", f"{R}/jobs?nextPageToken=x",
         "has no field named"),
]

# Tokens from real listings (filled in by the `tokens` fixture): a ListJobs token of PAGES,
# the same token with one character changed, and a ListOperations token of PAGES.
TOKEN_CASES: list[Case] = [
    _bad("jobs token altered", "GET", f"{PAGES}/jobs?pageSize=1&pageToken=$ALTERED", NOT_OURS),
    _bad("jobs token, another parent", "GET",
         f"/v2/projects/{PAGES_PROJECT}/locations/europe-west4/jobs?pageSize=1&pageToken=$JOBS",
         OTHER_LIST),
    _bad("jobs token, another project", "GET", f"{R}/jobs?pageSize=1&pageToken=$JOBS", OTHER_LIST),
    _bad("jobs token on ListExecutions", "GET", f"{PAGES}/jobs/-/executions?pageToken=$JOBS", OTHER_LIST),
    _bad("jobs token on Vertex customJobs of the same parent", "GET",
         f"/v1/projects/{PAGES_PROJECT}/locations/us-central1/customJobs?pageToken=$JOBS", OTHER_LIST),
    _bad("jobs token on ListOperations of the same parent", "GET",
         f"{PAGES}/operations?pageToken=$JOBS", OTHER_LIST),
    _bad("jobs token on Secret Manager", "GET", f"/v1/projects/{PAGES_PROJECT}/secrets?pageToken=$JOBS",
         OTHER_LIST),
    _bad("jobs token on Logging", "POST", ENTRIES, OTHER_LIST,
         {"resourceNames": [f"projects/{PAGES_PROJECT}"], "pageToken": "$JOBS"}),
    _bad("operations token, another filter", "GET",
         f"{PAGES}/operations?pageSize=1&filter=done%3Dtrue&pageToken=$OPERATIONS", OTHER_FILTER),
    _bad("operations token on ListJobs", "GET", f"{PAGES}/jobs?pageSize=1&pageToken=$OPERATIONS",
         OTHER_LIST),
    _bad("operations token on Vertex operations of another location", "GET",
         f"/v1/projects/{PAGES_PROJECT}/locations/europe-west4/operations?pageSize=1"
         "&pageToken=$OPERATIONS", OTHER_LIST),
]

# One request just over Google's 10 MiB (and under the transport's 32 MiB): env values each
# within Cloud Run's 32 KiB limit, so only the size can be what is refused.
OVER_10_MIB = {"template": {"template": {"containers": [{
    "image": "img", "command": ["true"],
    "env": [{"name": f"V{i}", "value": "x" * 32_000} for i in range(330)],
}]}}}
SIZE_CASES: list[Case] = [
    _bad("a Cloud Run create just over 10 MiB", "POST", f"{R}/jobs?jobId=big-corpus-job",
         "Request payload size exceeds the limit: 10485760 bytes.", OVER_10_MIB),
]

ALL_CASES = NAME_CASES + PAGE_CASES + TOKEN_CASES + SIZE_CASES


@pytest.fixture(scope="module")
def tokens(emulator: EmulatorProcess) -> Iterator[dict[str, str]]:
    """Page tokens the emulator issued: two jobs in PAGES (no run: creating a job starts
    nothing) make a ListJobs and a ListOperations of page size 1 return a next_page_token."""
    created = [f"corpus-page-{index}" for index in range(2)]
    for job_id in created:
        reply = call(emulator, "POST", f"{PAGES}/jobs?jobId={job_id}", JOB)
        assert reply.status in (200, 409), reply.body[:300]  # 409: a rerun in the same session
    jobs_token = call(emulator, "GET", f"{PAGES}/jobs?pageSize=1").json()["nextPageToken"]
    operations_token = call(emulator, "GET", f"{PAGES}/operations?pageSize=1").json()["nextPageToken"]
    altered = jobs_token[:-2] + ("A" if jobs_token[-2] != "A" else "B") + jobs_token[-1]
    yield {"$JOBS": jobs_token, "$OPERATIONS": operations_token, "$ALTERED": altered}
    for job_id in created:
        call(emulator, "DELETE", f"{PAGES}/jobs/{job_id}")


def _filled(text: str, tokens: dict[str, str]) -> str:
    for placeholder, token in tokens.items():
        text = text.replace(placeholder, token)
    return text


def test_the_corpus_has_at_least_70_cases() -> None:
    assert len(ALL_CASES) >= 70
    assert len({case[0] for case in ALL_CASES}) == len(ALL_CASES)  # ids are unique


@pytest.mark.parametrize(("case", "method", "path", "body", "http_status", "status", "words"),
                         ALL_CASES, ids=[case[0] for case in ALL_CASES])
def test_a_bad_request_is_a_google_error_and_the_emulator_keeps_serving(
    emulator: EmulatorProcess, tokens: dict[str, str], case: str, method: str, path: str,
    body: Any, http_status: int, status: str, words: str,
) -> None:
    sent = None if body is None else _filled(json.dumps(body), tokens)
    reply = call(emulator, method, _filled(path, tokens), sent)
    message = assert_google_error(reply, http_status, status)
    assert words in message, message
    assert len(message) < 1000, message  # a 300-character or 20,000-character input is cut short
    assert_still_serving(emulator)


@pytest.mark.parametrize("parameter", ["$alt=xml", "alt=xml"])
def test_an_alt_the_api_does_not_have_is_refused(emulator: EmulatorProcess, parameter: str) -> None:
    # Google's front end serves alt=json, proto and media; any other is a 400.
    reply = call(emulator, "GET", f"{V}/customJobs?{parameter}")
    assert_google_error(reply, 400, "INVALID_ARGUMENT")
    assert_still_serving(emulator)
