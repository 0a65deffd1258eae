"""Execution: worker pools, the training queue and job states."""

from __future__ import annotations

from deepaas_host.jobs.states import FINAL_STATES, JobStatus

__all__ = ["FINAL_STATES", "JobStatus"]
