"""Training on a GPU, serving on a CPU: runs where CUDA is (the device check), skipped elsewhere.

On the GPU machine: ``python3 -m pytest -c /dev/null --rootdir . --noconftest tests/integration/test_torch_cuda.py``
(its image has torch and scikit-learn but not dagster, which the shared fixtures need).
"""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

REPO = Path(__file__).resolve().parents[2]
SCORE_ON_CPU = """
import pickle, sys
import numpy as np
import torch
assert not torch.cuda.is_available()
model = pickle.load(open(sys.argv[1], "rb"))
X = np.load(sys.argv[2])
np.save(sys.argv[3], model.predict_proba(X))
"""


def test_a_model_trained_on_cuda_scores_the_same_on_a_machine_without_one(tmp_path):
    from sklearn.datasets import load_wine

    from mlops_assets.model.torch_mlp import TorchMLP

    X, y = load_wine(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    settings = {"task": "multiclass", "hidden_layers": [64, 64], "epochs": 100, "batch_size": 32}
    on_gpu = TorchMLP(**settings, learning_rate=0.01, device="auto").fit(X, y)
    assert on_gpu.device_used_.startswith("cuda")
    on_cpu = TorchMLP(**settings, learning_rate=0.01, device="cpu").fit(X, y)
    assert np.mean(on_gpu.predict(X) == y) > 0.95 and np.mean(on_cpu.predict(X) == y) > 0.95

    (tmp_path / "model.pkl").write_bytes(pickle.dumps(on_gpu))
    np.save(tmp_path / "X.npy", X)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-c", SCORE_ON_CPU, *(str(tmp_path / f) for f in ("model.pkl", "X.npy", "p.npy"))]
    subprocess.run(command, env=env, check=True)
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), on_gpu.predict_proba(X))
