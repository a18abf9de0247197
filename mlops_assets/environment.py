"""Which environment a process runs in, read once from its variables: the embedded default or production.

The same specs run on a laptop and on a cluster; what changes is read here, never from a spec. ``MLOPS_ENV``
names the environment; the other variables say where production keeps its state. ``mlops_assets.resources`` turns these
settings into the Dagster resources; the Dagster instance (PostgreSQL in production) is ``DAGSTER_HOME``'s
``dagster.yaml`` (deploy/dagster/dagster.yaml, or the Helm chart's).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlops_assets.errors import MlopsError

MLOPS_ENV = "MLOPS_ENV"
PIPELINES = "MLOPS_PIPELINES"  # the folder of specs the code location (definitions.py) and the CLI read
LOCAL, PRODUCTION = "local", "production"
STORE_URL = "MLOPS_STORE_URL"  # root of the artifact store, e.g. s3://bucket/data
TRACKING_URI = "MLFLOW_TRACKING_URI"  # in production, the tracking server's URL
TRAINER = "MLOPS_TRAINER"
SUBPROCESS, KUBERNETES = "subprocess", "kubernetes"
TRAINER_IMAGE = "MLOPS_TRAINER_IMAGE"
TRAINER_NAMESPACE = "MLOPS_TRAINER_NAMESPACE"
TRAINER_ENV_SECRETS = "MLOPS_TRAINER_ENV_SECRETS"  # comma-separated Secret names the training pod mounts
DEPLOYER = "MLOPS_DEPLOYER"  # where endpoints run: local processes, or Kubernetes Deployments
IN_CLUSTER = "KUBERNETES_SERVICE_HOST"  # set by Kubernetes in every pod
LOCAL_PROCESS = "local"
ENDPOINT_NAMESPACE = "MLOPS_ENDPOINT_NAMESPACE"
# What a training pod is handed by value, as the Dagster process has it: where the state is, never a secret
# (credentials reach the pod by reference, through TRAINER_ENV_SECRETS).
POD_SETTINGS = (MLOPS_ENV, STORE_URL, "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION")


def pipelines_folder(environ: Mapping[str, str] = os.environ) -> Path:
    """The folder of specs: ``MLOPS_PIPELINES``, else ``pipelines`` under the working directory."""
    return Path(environ.get(PIPELINES, "pipelines"))


@dataclass(frozen=True)
class Settings:
    env: str
    store_url: str | None  # None: the local layout's folder
    tracking_uri: str | None  # None: the local layout's SQLite file
    trainer: str
    deployer: str = LOCAL_PROCESS
    endpoint_namespace: str | None = None
    trainer_image: str | None = None
    trainer_namespace: str | None = None
    trainer_env_secrets: tuple[str, ...] = ()

    @property
    def production(self) -> bool:
        return self.env == PRODUCTION

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings ``environ`` (default: this process's) describes; a missing or unknown value is an
        error that names its variable, raised before anything starts."""
        environ = os.environ if environ is None else environ
        env = environ.get(MLOPS_ENV) or LOCAL
        _one_of(MLOPS_ENV, env, (LOCAL, PRODUCTION))
        trainer = environ.get(TRAINER) or (KUBERNETES if env == PRODUCTION else SUBPROCESS)
        _one_of(TRAINER, trainer, (SUBPROCESS, KUBERNETES))
        # Endpoints are Deployments where this process runs in a pod (as the Dagster chart's do), processes elsewhere.
        in_cluster = env == PRODUCTION and IN_CLUSTER in environ
        deployer = environ.get(DEPLOYER) or (KUBERNETES if in_cluster else LOCAL_PROCESS)
        _one_of(DEPLOYER, deployer, (LOCAL_PROCESS, KUBERNETES))
        settings = cls(
            env=env,
            store_url=environ.get(STORE_URL) or None,
            tracking_uri=environ.get(TRACKING_URI) or None,
            trainer=trainer,
            deployer=deployer,
            endpoint_namespace=environ.get(ENDPOINT_NAMESPACE) or None,
            trainer_image=environ.get(TRAINER_IMAGE) or None,
            trainer_namespace=environ.get(TRAINER_NAMESPACE) or None,
            trainer_env_secrets=tuple(s.strip() for s in environ.get(TRAINER_ENV_SECRETS, "").split(",") if s.strip()),
        )
        if settings.production:
            missing = [
                name
                for name, value in ((STORE_URL, settings.store_url), (TRACKING_URI, settings.tracking_uri))
                if not value
            ]
            if missing:
                raise MlopsError(f"{MLOPS_ENV}={PRODUCTION} needs {' and '.join(missing)} set")
            if not settings.tracking_uri.startswith(("http://", "https://")):
                raise MlopsError(
                    f"{TRACKING_URI}={settings.tracking_uri!r}: production reaches MLflow through its tracking "
                    "server (http:// or https://), so that every pod shares one registry"
                )
        return settings


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise MlopsError(f"{name}={value!r} is not one of {', '.join(allowed)}")
