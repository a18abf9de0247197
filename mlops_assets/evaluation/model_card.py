"""The model card: one Markdown page that says what a model version is, where it came from and how it did."""

from __future__ import annotations

from mlops_assets.records import EvaluationReport


def model_card(spec, report: EvaluationReport, tags: dict[str, str], holdouts: str = "") -> str:
    """``holdouts``: every holdout the version was judged on, side by side (``holdouts.Judgement.markdown``)."""
    model = report.model
    champion = report.champion_version or "none"
    rows = "\n".join(
        f"| {name} | {value:.4f} | "
        f"{'' if report.champion_metrics is None else format(report.champion_metrics[name], '.4f')} |"
        for name, value in report.metrics.items()
    )
    gate = "\n".join(f"- {reason}" for reason in report.gate_reasons) or "- no conditions declared"
    return f"""# Model card: {spec.name} version {model.version}

{spec.description or ""}

- Task: {spec.task}, target `{spec.target}`
- Estimator: {tags.get("estimator", "?")} ({spec.model.estimator or "torch MLP"}), trained on {tags.get("device", "?")}
- Dataset: content hash `{model.features.dataset_hash}`, features version `{model.features.version}`
- Trained on: {model.features.rows_by_origin or "?"} rows (feedback `{model.features.feedback_hash or "none"}`)
- Adapted to: {model.features.adaptation or "nothing (no drift answered by importance weights)"}
- Spec hash: `{tags.get("spec_hash", "?")}`
- Code: `{tags.get("git_sha", "?")}` (package {tags.get("package_version", "?")})
- Trigger: {model.trigger}; MLflow run `{model.run_id}`

## Holdout metrics (challenger v{model.version} vs champion {champion})

| metric | challenger | champion |
|---|---|---|
{rows}

## Every holdout (challenger vs champion)

{holdouts or "fixed holdout only"}

## Gate: {"passed" if report.gate_passed else "FAILED"}

{gate}
"""
