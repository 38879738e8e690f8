"""PyFlink jobs of the speed layer: these modules import pyflink and run in the Flink venv
(the client that submits them and the Python workers of the TaskManager)."""


def streaming_environment(job_name: str, parallelism: int, checkpoint_interval: str, **options: str):
    """A streaming TableEnvironment as every speed-layer job wants it: named, UTC, exactly-once
    checkpoints kept on cancellation (a restart resumes from them); ``options`` add settings."""
    from pyflink.table import EnvironmentSettings, TableEnvironment

    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    conf = t_env.get_config()
    for key, value in {
        "pipeline.name": job_name,
        "parallelism.default": str(parallelism),
        "table.local-time-zone": "UTC",
        "execution.checkpointing.interval": checkpoint_interval,
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        **options,
    }.items():
        conf.set(key, value)
    return t_env
