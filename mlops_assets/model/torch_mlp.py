"""A torch multilayer perceptron behind the scikit-learn estimator contract (fit / predict / predict_proba).

Behind that contract the rest of the framework (training, evaluation, serving) needs no torch-specific
code. Training runs on CUDA when ``device="auto"`` finds one, in mixed precision there; the fitted weights are
kept on the CPU, in fp32, so the model unpickles and serves on machines without a GPU.

With a ``checkpoint_uri`` (a local path or an ``s3://`` URL, read and written through fsspec) each epoch ends
by saving what the next one needs, and a fit that finds a checkpoint there continues after its epoch: a killed
pod or a retried step resumes the training, with the weights an uninterrupted fit would have reached. The
checkpoint outlives the fit: the training entry point removes it (``remove_checkpoint``) once the version is
registered, so that a failure between the two (the registry unreachable, the pod killed) is retried without
training again.
"""

from __future__ import annotations

import io
import itertools
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

logger = logging.getLogger(__name__)  # one line per epoch; the training entry point forwards it to the run

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class TorchMLP:
    # Scores are float32 arithmetic: a row's output moves in its last bits with the batch it is scored in and the
    # CPU's kernels (a single-row request against a batch, one machine against another). What the skew check
    # (``monitoring.skew``) counts as rounding for this model's outputs: a few float32 ulps.
    output_tolerance = 1e-6

    def __init__(
        self,
        task: str,
        hidden_layers: list[int],
        epochs: int,
        batch_size: int,
        learning_rate: float,
        device: str = "auto",
        seed: int = 0,
        precision: str = "auto",
        checkpoint_uri: str | None = None,
    ):
        self.task = task
        self.hidden_layers = list(hidden_layers)
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.device = device
        self.seed = seed
        self.precision = precision
        self.checkpoint_uri = checkpoint_uri  # where the fit is, not what it learns: not a parameter
        self.network_: nn.Sequential | None = None
        self.device_used_: str | None = None
        self.precision_used_: str | None = None
        self.resumed_from_epoch_: int | None = None  # the checkpoint's epoch this fit continued after
        self.epoch_seconds_: list[float] = []  # the epochs this fit ran, not those before its checkpoint

    def _device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> TorchMLP:
        """Minimise the (``sample_weight``-weighted) mean loss; weights are rescaled to mean 1, so a
        weighted fit keeps the learning rate's meaning."""
        torch.manual_seed(self.seed)
        device = self._device()
        precision = resolve_precision(self.precision, device)
        n_out = 1 if self.task == "regression" else int(np.max(y)) + 1
        sizes = [X.shape[1], *self.hidden_layers]
        layers: list[nn.Module] = []
        for n_in, n_hidden in itertools.pairwise(sizes):
            layers += [nn.Linear(n_in, n_hidden), nn.ReLU()]
        network = nn.Sequential(*layers, nn.Linear(sizes[-1], n_out)).to(device)
        features = torch.as_tensor(X, dtype=torch.float32, device=device)
        weights = np.ones(len(X)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        weights = torch.as_tensor(weights / weights.mean(), dtype=torch.float32, device=device)
        if self.task == "regression":
            target = torch.as_tensor(y, dtype=torch.float32, device=device)[:, None]
            loss_fn: nn.Module = nn.MSELoss(reduction="none")
        else:
            target = torch.as_tensor(y, dtype=torch.long, device=device)
            loss_fn = nn.CrossEntropyLoss(reduction="none")
        training = _Training(
            network,
            torch.optim.Adam(network.parameters(), lr=self.learning_rate),
            torch.amp.GradScaler(device.type, enabled=precision == "fp16"),  # bf16 keeps fp32's range
            torch.Generator().manual_seed(self.seed),
            AUTOCAST_DTYPES.get(precision),
        )
        first = self._resume(training)
        self.epoch_seconds_ = []
        network.train()
        for epoch in range(first + 1, self.epochs + 1):
            started = time.perf_counter()
            loss = training.epoch(features, target, weights, loss_fn, self.batch_size)
            self.epoch_seconds_.append(time.perf_counter() - started)
            if self.checkpoint_uri is not None:
                save_checkpoint(self.checkpoint_uri, training.state(epoch))
            logger.info("epoch %d/%d: loss %.4f, %.2f s", epoch, self.epochs, loss, self.epoch_seconds_[-1])
        self.network_ = network.cpu().eval()
        self.device_used_ = str(device)
        self.precision_used_ = precision
        return self

    def _resume(self, training: _Training) -> int:
        """Load the checkpoint, if there is one: the epoch it saved, else 0."""
        checkpoint = None if self.checkpoint_uri is None else load_checkpoint(self.checkpoint_uri)
        if checkpoint is None:
            self.resumed_from_epoch_ = None
            return 0
        self.resumed_from_epoch_ = training.restore(checkpoint)
        logger.info(
            "resuming from epoch %d/%d (checkpoint %s)", self.resumed_from_epoch_, self.epochs, self.checkpoint_uri
        )
        return self.resumed_from_epoch_

    def _forward(self, X: np.ndarray) -> torch.Tensor:
        assert self.network_ is not None, "fit the model first"
        with torch.inference_mode():
            return self.network_(torch.as_tensor(np.asarray(X), dtype=torch.float32))

    def predict(self, X: np.ndarray) -> np.ndarray:
        out = self._forward(X)
        if self.task == "regression":
            return out[:, 0].numpy().astype(float)
        return out.argmax(dim=1).numpy()

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return torch.softmax(self._forward(X).double(), dim=1).numpy()

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        names = ("task", "hidden_layers", "epochs", "batch_size", "learning_rate", "device", "seed", "precision")
        return {k: getattr(self, k) for k in names}


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto``: bf16 on a CUDA device that has it, else fp16 (with loss scaling); fp32 on the CPU, where
    autocast only adds casts to a network this small. An explicit choice is kept on any device."""
    if precision != "auto":
        return precision
    if device.type != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


@dataclass
class _Training:
    """What a fit changes from one epoch to the next: all that a checkpoint holds."""

    network: nn.Sequential
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    generator: torch.Generator  # the batch order: restored, the next epoch shuffles as it would have
    autocast_dtype: torch.dtype | None  # None: fp32

    def epoch(self, features, target, weights, loss_fn: nn.Module, batch_size: int) -> float:
        """One pass in a shuffled order; the mean weighted loss over its batches, read once at the end so a
        GPU is not stopped at every step."""
        device = features.device
        order = torch.randperm(len(features), generator=self.generator).to(device)
        total = torch.zeros((), device=device)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            self.optimizer.zero_grad()
            with torch.autocast(device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
                out = self.network(features[batch])
            per_row = loss_fn(out.float(), target[batch]).reshape(len(batch), -1).mean(dim=1)
            loss = (per_row * weights[batch]).mean()
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            total += loss.detach() * len(batch)
        return float(total) / len(order)

    def state(self, epoch: int) -> dict[str, Any]:
        return {
            "epoch": epoch,
            "network": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "generator": self.generator.get_state(),
        }

    def restore(self, checkpoint: dict[str, Any]) -> int:
        self.network.load_state_dict(checkpoint["network"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scaler.load_state_dict(checkpoint["scaler"])
        self.generator.set_state(checkpoint["generator"])
        return int(checkpoint["epoch"])


def _partial(uri: str) -> str:
    return f"{uri}.partial"


def save_checkpoint(uri: str, state: dict[str, Any]) -> None:
    """Write ``state`` beside ``uri``, then move it there: a kill mid-write leaves the previous checkpoint
    whole (a local rename replaces atomically; on S3 the move is a copy, which lands whole or not at all)."""
    import fsspec

    buffer = io.BytesIO()
    torch.save(state, buffer)
    fs, path = fsspec.core.url_to_fs(uri)
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    fs.pipe_file(_partial(path), buffer.getvalue())
    fs.mv(_partial(path), path)


def load_checkpoint(uri: str) -> dict[str, Any] | None:
    """The checkpoint at ``uri``, ``None`` where there is none. Tensors and plain values only
    (``weights_only``): a checkpoint in a shared bucket cannot run code in the process that reads it."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri)
    if not fs.exists(path):
        return None
    return torch.load(io.BytesIO(fs.cat_file(path)), map_location="cpu", weights_only=True)


def remove_checkpoint(uri: str) -> None:
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri)
    for leftover in (path, _partial(path)):
        if fs.exists(leftover):
            fs.rm(leftover)
