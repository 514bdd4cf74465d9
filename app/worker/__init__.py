"""Job workers: claim generation jobs from PostgreSQL and run their pipeline (SPEC §5).

`runner.Worker` is the claim loop, `job_run.JobRun` one attempt of one job, `job_monitor` what
keeps that attempt's lease and notices its cancellation, `pipeline` the stage interface and
`stages` the stages themselves.
"""

from app.worker.runner import Worker, inprocess_worker

__all__ = ["Worker", "inprocess_worker"]
