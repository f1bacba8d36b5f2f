"""The names by which a job is known to run a remote step, on the ground floor.

A step's job runs `python -m ENTRYPOINT_MODULE RUN_URL` with `KEY_SECRET_ENV` naming its key's
secret version. The remote-step modules (steps/) write those names, and the run history
(`history.py`, below them) reads them back to record where a step's outcome is; kept here so
that the history need not import the layer above it. Standard library only: the job's entry
point imports these names too.
"""

from __future__ import annotations

__all__ = ["ENTRYPOINT_MODULE", "KEY_SECRET_ENV"]

ENTRYPOINT_MODULE = "gcpjobs.steps.entrypoint"
# The job's environment variable that names the Secret Manager secret version holding the key
# (`projects/P/secrets/gcpjobs-step-RUN/versions/1`): a name, not the key, so reading the job
# does not give the key away.
KEY_SECRET_ENV = "GCPJOBS_STEP_KEY_SECRET"
