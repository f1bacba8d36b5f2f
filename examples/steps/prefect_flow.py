"""A Prefect flow whose training step runs as a remote job; the rest runs where the flow runs.

    GCPJOBS_STEP_IMAGE=python:3.11-slim python examples/steps/prefect_flow.py

`fit` is an ordinary Prefect task (retries, caching, the UI) that calls a remote function: the
training runs as a Vertex AI custom job with a GPU (on the emulator: a local process), and its
return value comes back to the task as if it had run there. It runs on the emulator unless
GCPJOBS_TARGET=gcp is set.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import training
from prefect import flow, task

import gcpjobs

# An example never reaches real GCP unless asked to (GCPJOBS_TARGET=gcp).
os.environ.setdefault("GCPJOBS_TARGET", "emulator")
os.environ.setdefault("GCPJOBS_STEP_IMAGE", "python:3.11-slim")

# `training.train` stays importable as itself, so the job imports `training` (NumPy only),
# not this module with Prefect.
remote_train = gcpjobs.remote(training.train, machine_type="n1-standard-8",
                              accelerator_type="NVIDIA_TESLA_T4", maximum_run_time="2h")


@task
def load(samples: int) -> tuple[np.ndarray, np.ndarray]:
    return training.make_data(samples, seed=7)


@task
def fit(features: np.ndarray, labels: np.ndarray, epochs: int) -> dict[str, Any]:
    return remote_train(features, labels, epochs=epochs)


@task
def evaluate(model: dict[str, Any], features: np.ndarray, labels: np.ndarray) -> float:
    return training.accuracy(model, features, labels)


@flow(log_prints=True)
def training_pipeline(samples: int = 2000, epochs: int = 300) -> float:
    features, labels = load(samples)
    model = fit(features, labels, epochs)
    score = evaluate(model, features, labels)
    print(f"trained remotely: loss {model['loss']:.3f}, accuracy {score:.3f}")
    return score


if __name__ == "__main__":
    training_pipeline()
