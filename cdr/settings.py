"""Typed platform configuration: packaged defaults, then a user file, then environment.

Precedence (highest first): environment variables ``CDR_<SECTION>__<KEY>``, the TOML
file named by ``CDR_CONFIG``, the packaged ``cdr/config/platform.toml``. Every port,
path, topic name and heap size of the platform is read from here; nothing else in
the code base hard-codes one.
"""

from __future__ import annotations

import os
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULTS_FILE = Path(str(resources.files("cdr") / "config" / "platform.toml"))


class StackSettings(BaseModel):
    home: Path = Path(".stack")
    bind_ip: str = "127.0.0.1"
    java_home: str = ""
    ready_timeout_s: int = 180

    @property
    def home_dir(self) -> Path:
        return self.home if self.home.is_absolute() else REPO_ROOT / self.home


class KafkaSettings(BaseModel):
    broker_ports: list[int]
    controller_ports: list[int]
    heap_mb: int
    metrics_ports: list[int]
    default_replication_factor: int
    min_insync_replicas: int
    # The clients' time limits (streaming/producer.py, streaming/topics.py; docs/operations.md).
    connect_timeout_s: float = Field(gt=0)   # no broker answers the first metadata request: fail (exit 3)
    delivery_timeout_s: float = Field(gt=0)  # a record unacknowledged this long is failed (message.timeout.ms)
    flush_timeout_s: float = Field(gt=0)     # the producer's last wait for acknowledgements; then unacknowledged = lost

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.broker_ports)


class HdfsSettings(BaseModel):
    namenode_rpc_port: int
    namenode_http_port: int
    datanode_ports: list[list[int]]
    replication: int
    namenode_heap_mb: int
    datanode_heap_mb: int
    root: str

    @property
    def uri(self) -> str:
        return f"hdfs://127.0.0.1:{self.namenode_rpc_port}"


class PostgresSettings(BaseModel):
    port: int
    user: str
    os_user: str
    metastore_db: str
    serving_db: str


class HiveSettings(BaseModel):
    thrift_port: int
    thrift_ui_port: int
    warehouse_dir: str
    driver_memory_mb: int


class BatchSettings(BaseModel):
    master: str
    driver_memory_mb: int
    executor_memory_mb: int
    shuffle_partitions: int


class FlinkSettings(BaseModel):
    venv: Path
    rest_port: int
    jobmanager_rpc_port: int
    jobmanager_memory_mb: int
    taskmanager_memory_mb: int
    taskmanager_slots: int
    jobmanager_metrics_port: int
    taskmanager_metrics_port: int

    @property
    def venv_dir(self) -> Path:
        return self.venv if self.venv.is_absolute() else REPO_ROOT / self.venv


class PrometheusSettings(BaseModel):
    port: int
    alertmanager_port: int
    pushgateway_port: int

    @property
    def pushgateway_url(self) -> str:
        """Where the CLIs push what Prometheus cannot scrape (cdr/pushgateway.py)."""
        return f"http://127.0.0.1:{self.pushgateway_port}"


class SupersetSettings(BaseModel):
    port: int
    venv: Path
    metadata_db: str
    admin_user: str

    @property
    def venv_dir(self) -> Path:
        return self.venv if self.venv.is_absolute() else REPO_ROOT / self.venv


class ProducerSettings(BaseModel):
    metrics_port: int


class BronzeSettings(BaseModel):
    dir: str
    database: str
    checkpoint_interval_s: int
    compaction_target_mb: int


class DetectionSettings(BaseModel):
    checkpoint_interval_s: int
    source_idle_timeout_s: int = Field(ge=1)


class ServingSettings(BaseModel):
    """The serving layer (serving/, docs/serving.md): the merged views in PostgreSQL's serving_db."""

    publish_after_batch: bool
    retain_after_publish: bool
    speed_retention_hours: float = Field(ge=0)
    reconcile_tolerance: float = Field(ge=0, le=1)


class TopicSettings(BaseModel):
    prefix: str
    partitions: int
    retention_hours: int
    dead_letter: str
    subscribers: str

    def for_record_type(self, record_type: str) -> str:
        return f"{self.prefix}{record_type}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CDR_", env_nested_delimiter="__", extra="ignore"
    )

    environment: Literal["development", "production"] = "development"
    stack: StackSettings = Field(default_factory=StackSettings)
    kafka: KafkaSettings
    hdfs: HdfsSettings
    postgres: PostgresSettings
    hive: HiveSettings
    batch: BatchSettings
    flink: FlinkSettings
    prometheus: PrometheusSettings
    superset: SupersetSettings
    producer: ProducerSettings
    topics: TopicSettings
    bronze: BronzeSettings
    detection: DetectionSettings
    serving: ServingSettings

    @property
    def bronze_uri(self) -> str:
        """Root of the bronze landing on HDFS."""
        return f"{self.hdfs.uri}{self.hdfs.root.rstrip('/')}/{self.bronze.dir.strip('/')}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        files = [DEFAULTS_FILE]
        user_file = os.environ.get("CDR_CONFIG")
        if user_file:
            if not Path(user_file).is_file():
                raise FileNotFoundError(f"CDR_CONFIG names {user_file}, which is not a file")
            files.append(Path(user_file))
        # TomlConfigSettingsSource deep-merges later files over earlier ones.
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=files, deep_merge=True),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
