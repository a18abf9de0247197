"""A torch multilayer perceptron behind the scikit-learn estimator contract (fit / predict / predict_proba).

Behind that contract the rest of the framework (training, evaluation, serving) needs no torch-specific
code. Training runs on CUDA when ``device="auto"`` finds one; the fitted weights are kept on the CPU so the
model unpickles and serves on machines without a GPU.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import torch
from torch import nn


class TorchMLP:
    def __init__(
        self,
        task: str,
        hidden_layers: list[int],
        epochs: int,
        batch_size: int,
        learning_rate: float,
        device: str = "auto",
        seed: int = 0,
    ):
        self.task = task
        self.hidden_layers = list(hidden_layers)
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.device = device
        self.seed = seed
        self.network_: nn.Sequential | None = None
        self.device_used_: str | None = None

    def _device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> TorchMLP:
        """Minimise the (``sample_weight``-weighted) mean loss; weights are rescaled to mean 1, so a
        weighted fit keeps the learning rate's meaning."""
        torch.manual_seed(self.seed)
        device = self._device()
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
        optimizer = torch.optim.Adam(network.parameters(), lr=self.learning_rate)
        generator = torch.Generator().manual_seed(self.seed)
        network.train()
        for _ in range(self.epochs):
            order = torch.randperm(len(features), generator=generator).to(device)
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                optimizer.zero_grad()
                per_row = loss_fn(network(features[batch]), target[batch]).reshape(len(batch), -1).mean(dim=1)
                (per_row * weights[batch]).mean().backward()
                optimizer.step()
        self.network_ = network.cpu().eval()
        self.device_used_ = str(device)
        return self

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
        return {
            k: getattr(self, k)
            for k in ("task", "hidden_layers", "epochs", "batch_size", "learning_rate", "device", "seed")
        }
