"""``wildml promote``: move a registry alias to a model only when its test figures allow it.

The gate compares an evaluate run (the candidate) with the run behind the alias (the
champion) on guarded metrics, read from ``promote:`` in ``params.yaml``:

- absolute floors, checked always (and the only checks while no champion exists): overall
  PR-AUC, overall recall at the operating threshold, F1 at the operating threshold per
  language, and a ceiling on the expected calibration error;
- tolerances against the champion: the candidate may trail it by at most ``tolerance.pr_auc``
  in overall PR-AUC, ``tolerance.recall`` in recall, and ``tolerance.lang_pr_auc`` in the
  PR-AUC of any language both runs have enough positives in.

A refusal lists every failed check and exits with :class:`PromotionRefusedError`'s code.
``--force --reason`` overrides it; the reason is recorded. Every decision (passed, forced or
refused) is written to the candidate run as tags and a JSON artifact under ``promotion/``,
and a promotion sets the alias on the registered model version that ``wildml export``
registered for the candidate: the version tagged with the sha256 of the ``metrics.json`` the
candidate run logged (so an export at a later git commit still belongs to its evaluate run),
or, for versions registered without that tag, the one whose export run followed the
candidate in the same pipeline run.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wildml import compare
from wildml.config import load_params
from wildml.errors import ConfigError, DataError, WildmlError

logger = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "model_name": compare.DEFAULT_MODEL_NAME,
    "alias": compare.DEFAULT_ALIAS,
    "tolerance": {"pr_auc": 0.02, "recall": 0.02, "lang_pr_auc": 0.05},
    "floors": {"pr_auc": 0.5, "recall": 0.7},
    "max_ece": 0.15,
    "lang_f1_floor": {"default": 0.3},
    "min_lang_positives": 5,
    "n_boot": 500,
    "ci": 0.95,
    "seed": 0,
}
TAG_PREFIX = "wildml.promote"
GATED_METRICS = ("pr_auc", "recall", "f1", "ece")


class PromotionRefusedError(WildmlError):
    """The candidate failed the promotion gate (and ``--force`` was not given)."""

    exit_code = 5


@dataclass
class Check:
    """One guarded figure: what it is, the candidate's value, the limit and the outcome.

    ``passed`` is None when the check could not be measured (too few positives in a language)
    and therefore neither passes nor blocks.
    """

    name: str
    metric: str
    group: str
    value: float | None
    limit: float | None
    passed: bool | None
    champion: float | None = None
    delta: float | None = None
    low: float | None = None
    high: float | None = None
    detail: str = ""


def gate_config(params_path: str | os.PathLike | None) -> dict[str, Any]:
    """The ``promote`` section over :data:`DEFAULTS` (nested mappings merged one level).

    Without ``promote.model_name`` the registered model is the one export writes
    (``export.model_name``); a ``promote.model_name`` that differs from it is warned about,
    since the gate would then look for the candidate's version in another model.
    """
    cfg = {key: (dict(v) if isinstance(v, dict) else v) for key, v in DEFAULTS.items()}
    if params_path is None or not Path(params_path).is_file():
        return cfg
    params = load_params(params_path)
    given = params.get("promote") or {}
    if not isinstance(given, dict):
        raise ConfigError(f"{params_path}: 'promote' must be a mapping")
    exported = (params.get("export") or {}).get("model_name")
    if exported:
        cfg["model_name"] = str(exported)
    for key, value in given.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    if exported and str(cfg["model_name"]) != str(exported):
        logger.warning(
            "%s: promote.model_name %r differs from export.model_name %r; promote looks for "
            "versions in %r",
            params_path,
            cfg["model_name"],
            exported,
            cfg["model_name"],
        )
    return cfg


# --------------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------------


def _lookup(table: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(row["group"], row["metric"]): row for row in table.to_dict("records")}


def _floor(name: str, row: dict[str, Any], limit: float, *, ceiling: bool = False) -> Check:
    value = row.get("value")
    if value is None or value != value:
        return Check(name, row["metric"], row["group"], None, limit, False, detail="undefined")
    passed = value <= limit if ceiling else value >= limit
    return Check(name, row["metric"], row["group"], float(value), limit, bool(passed))


def floor_checks(candidate: compare.RunScores, cfg: dict[str, Any]) -> list[Check]:
    """Absolute floors and ceilings on the candidate's own test figures."""
    figures = _lookup(compare.run_figures(candidate, GATED_METRICS))
    floors = cfg["floors"]
    checks = [
        _floor("PR-AUC floor", figures[("overall", "pr_auc")], float(floors["pr_auc"])),
        _floor("recall floor", figures[("overall", "recall")], float(floors["recall"])),
        _floor("ECE ceiling", figures[("overall", "ece")], float(cfg["max_ece"]), ceiling=True),
    ]
    lang_floors = dict(cfg["lang_f1_floor"])
    default = lang_floors.pop("default", None)
    min_pos = int(cfg["min_lang_positives"])
    langs = sorted({g.split(":", 1)[1] for g, _ in figures if g.startswith("lang:")})
    for lang in sorted(set(langs) | set(lang_floors)):
        limit = lang_floors.get(lang, default)
        if limit is None:
            continue
        row = figures.get((f"lang:{lang}", "f1"))
        name = f"F1 floor [{lang}]"
        if row is None or row["n_pos"] < min_pos:
            n_pos = 0 if row is None else row["n_pos"]
            detail = f"not measured: {n_pos} test positives (< {min_pos})"
            checks.append(
                Check(name, "f1", f"lang:{lang}", None, float(limit), None, detail=detail)
            )
            continue
        checks.append(_floor(name, row, float(limit)))
    return checks


def champion_checks(
    candidate: compare.RunScores, champion: compare.RunScores, cfg: dict[str, Any]
) -> list[Check]:
    """Tolerance checks against the champion, paired on the same listings when possible."""
    try:
        table = compare.paired_figures(
            candidate,
            champion,
            ("pr_auc", "recall"),
            n_boot=int(cfg["n_boot"]),
            level=float(cfg["ci"]),
            seed=int(cfg["seed"]),
        )
        paired_note = ""
    except DataError as err:
        # Known limitation: with different test listings (a new split or new data) the two
        # runs are compared on their own test sets, so a delta mixes model and data changes
        # and has no interval; re-evaluate the champion on the candidate's split to be sure.
        logger.warning("promote: unpaired comparison with the champion: %s", err)
        table = _unpaired(candidate, champion)
        paired_note = "unpaired: different test listings"
    figures = _lookup(table)
    tol = cfg["tolerance"]
    checks = [
        _tolerance("PR-AUC vs champion", figures[("overall", "pr_auc")], float(tol["pr_auc"])),
        _tolerance("recall vs champion", figures[("overall", "recall")], float(tol["recall"])),
    ]
    min_pos = int(cfg["min_lang_positives"])
    champion_pos = _lookup(compare.run_figures(champion, ("pr_auc",)))
    for (group, metric), row in sorted(figures.items()):
        if not group.startswith("lang:") or metric != "pr_auc":
            continue
        other = champion_pos.get((group, "pr_auc"))
        if row["n_pos"] < min_pos or other is None or other["n_pos"] < min_pos:
            continue
        name = f"PR-AUC vs champion [{group[5:]}]"
        checks.append(_tolerance(name, row, float(tol["lang_pr_auc"])))
    for check in checks:
        check.detail = "; ".join(filter(None, [check.detail, paired_note]))
    return checks


def _unpaired(candidate: compare.RunScores, champion: compare.RunScores) -> Any:
    cand = compare.run_figures(candidate, ("pr_auc", "recall"))
    base = compare.run_figures(champion, ("pr_auc", "recall"))[["group", "metric", "value"]]
    table = cand.merge(base.rename(columns={"value": "baseline"}), on=["group", "metric"])
    table["delta"] = [
        None if a is None or b is None else a - b
        for a, b in zip(table["value"], table["baseline"], strict=True)
    ]
    table["low"] = None
    table["high"] = None
    return table


def _tolerance(name: str, row: dict[str, Any], tolerance: float) -> Check:
    value, base, delta = (_opt(row.get(key)) for key in ("value", "baseline", "delta"))
    check = Check(name, row["metric"], row["group"], value, -tolerance, None, base, delta)
    check.low, check.high = _opt(row.get("low")), _opt(row.get("high"))
    if delta is None:
        check.passed, check.detail = False, "undefined on the candidate or the champion"
    else:
        check.passed = bool(delta >= -tolerance)
    return check


def _opt(value: Any) -> float | None:
    return None if value is None or value != value else float(value)


def gate(
    candidate: compare.RunScores, champion: compare.RunScores | None, cfg: dict[str, Any]
) -> list[Check]:
    """Every check of the gate: floors always, tolerances when a champion exists."""
    checks = floor_checks(candidate, cfg)
    if champion is not None and champion.run_id != candidate.run_id:
        checks += champion_checks(candidate, champion, cfg)
    return checks


def describe(check: Check) -> str:
    """One line for a person: the figure, the limit and why it failed or passed."""
    state = {True: "ok", False: "FAILED", None: "skipped"}[check.passed]
    if check.limit is None and check.value is None:
        return f"[{state}] {check.name} — {check.detail}"
    if check.delta is not None or check.champion is not None:
        text = (
            f"{check.name}: {_num(check.value)} vs champion {_num(check.champion)}, "
            f"delta {_num(check.delta, sign=True)} (allowed >= {check.limit:+.3f})"
        )
        if check.low is not None:
            text += f", interval [{check.low:+.3f}, {check.high:+.3f}]"
    else:
        relation = "<=" if check.name.endswith("ceiling") else ">="
        limit = "—" if check.limit is None else f"{check.limit:.3f}"
        text = f"{check.name}: {_num(check.value)} (required {relation} {limit})"
    if check.detail:
        text += f" — {check.detail}"
    return f"[{state}] {text}"


def _num(value: float | None, *, sign: bool = False) -> str:
    if value is None:
        return "undefined"
    return f"{value:+.3f}" if sign else f"{value:.3f}"


# --------------------------------------------------------------------------------------------
# Which registered model version belongs to an evaluate run
# --------------------------------------------------------------------------------------------


def evaluated_digest(mlflow_client: Any, run_id: str) -> str | None:
    """sha256 of the ``metrics.json`` an evaluate run logged; None when it logged none."""
    from mlflow.exceptions import MlflowException

    from wildml.score_manifest import sha256_file

    run = mlflow_client.get_run(run_id)
    name = Path(run.data.params.get("metrics", "metrics.json")).name
    with tempfile.TemporaryDirectory(prefix="wildml-promote-") as tmp:
        try:
            local = mlflow_client.download_artifacts(run_id, name, tmp)
        except (MlflowException, OSError):
            return None
        return sha256_file(local)


def _exported_from(mlflow_client: Any, version: Any) -> str | None:
    """The evaluate run behind a version that an export run registered, if any."""
    if not version.run_id:
        return None
    source = mlflow_client.get_run(version.run_id)
    if source.data.tags.get(compare.STAGE_TAG) != compare.EXPORT_STAGE:
        return None
    return compare.linked_evaluate_run(mlflow_client, source)


def version_for_run(mlflow_client: Any, model_name: str, run_id: str) -> Any:
    """The newest version of ``model_name`` that ``wildml export`` registered for the run.

    A version belongs to the run when it is tagged with the run (``wildml.evaluate_run_id``),
    when it was exported with the run's figures (its ``wildml.metrics_sha256`` tag equals the
    sha256 of the ``metrics.json`` the run logged), or, for a version without that tag, when
    its export run followed the evaluate run at the same git commit and DVC experiment.

    Raises
    ------
    DataError
        When no version belongs to the run (export not run after this evaluate run).
    """
    from mlflow.exceptions import MlflowException

    from wildml.export import METRICS_DIGEST_TAG

    try:
        versions = mlflow_client.search_model_versions(f"name = '{model_name}'")
    except MlflowException as err:
        raise DataError(f"registered model '{model_name}' not found: run `wildml export`") from err
    # An evaluate run re-run to the same metrics.json byte for byte matches the same version:
    # it vouches for the same figures, so either run may promote it.
    tagged = any(METRICS_DIGEST_TAG in (v.tags or {}) for v in versions)
    digest = evaluated_digest(mlflow_client, run_id) if tagged else None
    matches = []
    for version in versions:
        tags = version.tags or {}
        if tags.get(compare.EVALUATE_RUN_TAG) == run_id or version.run_id == run_id:
            matches.append(version)
        elif METRICS_DIGEST_TAG in tags:
            if digest is not None and tags[METRICS_DIGEST_TAG] == digest:
                matches.append(version)
        elif _exported_from(mlflow_client, version) == run_id:
            matches.append(version)
    if not matches:
        raise DataError(
            f"no version of '{model_name}' was exported from evaluate run {run_id}: run "
            "`wildml export` on the metrics.json this evaluate run wrote, or pass --version"
        )
    return max(matches, key=lambda v: int(v.version))


def _target_version(mlflow_client: Any, model_name: str, run_id: str, version: str | None) -> Any:
    from mlflow.exceptions import MlflowException

    if version is None:
        return version_for_run(mlflow_client, model_name, run_id)
    try:
        return mlflow_client.get_model_version(model_name, str(version))
    except MlflowException as err:
        raise DataError(f"model version {model_name}/{version} not found") from err


def _champion(mlflow_client: Any, model_name: str, alias: str) -> tuple[Any, Any]:
    version = compare.alias_version(mlflow_client, model_name, alias)
    if version is None:
        return None, None
    run_id = compare.evaluate_run_of_version(mlflow_client, version)
    if run_id is None:
        return version, None
    return version, compare.load_run_scores(run_id, mlflow_client=mlflow_client)


def _unknown_champion(model_name: str, alias: str, version: Any) -> Check:
    """A failing check: the model in service has no figures to hold the candidate against."""
    detail = (
        f"{model_name}@{alias} (version {version.version}) is linked to no evaluate run; "
        f"set the tag {compare.EVALUATE_RUN_TAG} on that version, or --force --reason"
    )
    return Check("champion figures", "", "", None, None, False, detail=detail)


# --------------------------------------------------------------------------------------------
# The decision
# --------------------------------------------------------------------------------------------


def _who() -> str:
    try:
        return os.environ.get("WILDML_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def decision_record(
    candidate: compare.RunScores,
    checks: list[Check],
    *,
    outcome: str,
    model_name: str,
    alias: str,
    version: Any,
    champion: tuple[Any, Any],
    reason: str | None,
) -> dict[str, Any]:
    """The JSON written to the run: outcome, every check with its figures, who and when."""
    champion_version, champion_run = champion
    return {
        "decision": outcome,
        "forced": outcome == "forced",
        "reason": reason,
        "by": _who(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "alias": alias,
        "model_name": model_name,
        "model_version": None if version is None else str(version.version),
        "run_id": candidate.run_id,
        "run": candidate.name,
        "champion": None
        if champion_version is None
        else {
            "run_id": None if champion_run is None else champion_run.run_id,
            "model_version": str(champion_version.version),
        },
        "failed": [c.name for c in checks if c.passed is False],
        "checks": [asdict(c) for c in checks],
    }


def record_decision(mlflow_client: Any, record: dict[str, Any]) -> str:
    """Write the decision to the candidate run (tags + JSON artifact); return its path there."""
    prefix = f"{TAG_PREFIX}.{record['alias']}"
    tags = {
        f"{prefix}.decision": record["decision"],
        f"{prefix}.by": record["by"],
        f"{prefix}.at": record["at"],
        f"{prefix}.forced": str(record["forced"]).lower(),
        f"{prefix}.failed": ", ".join(record["failed"])[:5000] or "none",
    }
    if record["reason"]:
        tags[f"{prefix}.reason"] = record["reason"][:5000]
    if record["model_version"]:
        tags[f"{prefix}.model_version"] = f"{record['model_name']}/{record['model_version']}"
    for key, value in tags.items():
        mlflow_client.set_tag(record["run_id"], key, value)
    stamp = record["at"].replace(":", "").replace("-", "")
    name = f"{record['alias']}-{record['decision']}-{stamp}.json"
    with tempfile.TemporaryDirectory(prefix="wildml-promote-") as tmp:
        path = Path(tmp) / name
        path.write_text(json.dumps(record, indent=2, allow_nan=False), encoding="utf-8")
        mlflow_client.log_artifact(record["run_id"], str(path), artifact_path="promotion")
    return f"promotion/{name}"


def _set_alias(mlflow_client: Any, record: dict[str, Any]) -> None:
    name, version = record["model_name"], record["model_version"]
    mlflow_client.set_registered_model_alias(name, record["alias"], version)
    for key, value in {
        compare.EVALUATE_RUN_TAG: record["run_id"],
        f"{TAG_PREFIX}.{record['alias']}.at": record["at"],
        f"{TAG_PREFIX}.{record['alias']}.by": record["by"],
        f"{TAG_PREFIX}.{record['alias']}.forced": str(record["forced"]).lower(),
    }.items():
        mlflow_client.set_model_version_tag(name, version, key, value)
    if record["reason"]:
        key = f"{TAG_PREFIX}.{record['alias']}.reason"
        mlflow_client.set_model_version_tag(name, version, key, record["reason"][:5000])


def _refusal(record: dict[str, Any], failed: list[Check]) -> PromotionRefusedError:
    lines = "\n  ".join(describe(c) for c in failed)
    return PromotionRefusedError(
        f"promotion of run {record['run_id']} to {record['model_name']}@{record['alias']} "
        f"refused; failed checks:\n  {lines}\n"
        "(decision recorded on the run; override with --force --reason)"
    )


def promote(
    run_id: str,
    *,
    alias: str | None = None,
    params_path: str | os.PathLike | None = "params.yaml",
    force: bool = False,
    reason: str | None = None,
    model_name: str | None = None,
    version: str | None = None,
    mlflow_client: Any | None = None,
) -> dict[str, Any]:
    """Gate an evaluate run and, if it passes (or is forced), point the alias at its model.

    Parameters
    ----------
    run_id
        The candidate's evaluate run.
    alias
        Registry alias to move (default ``promote.alias``, normally ``champion``).
    params_path
        Params file with the ``promote`` section; defaults apply when it is absent.
    force, reason
        Promote despite failed checks; ``reason`` is required and recorded.
    model_name
        Registered model (default ``promote.model_name``, the name export registers).
    version
        Model version to promote; default: the one export registered for ``run_id``.

    Returns
    -------
    dict
        The decision record (also written to the run).

    Raises
    ------
    PromotionRefusedError
        When a check fails and ``force`` is not set (the refusal is recorded first).
    ConfigError
        ``force`` without a ``reason``.
    DataError
        Unknown run, no scores artifact, no registered version for the run.
    """
    if force and not (reason or "").strip():
        raise ConfigError('--force needs --reason "why": the reason is recorded on the run')
    cfg = gate_config(params_path)
    alias = alias or str(cfg["alias"])
    model_name = model_name or str(cfg["model_name"])
    mlflow_client = mlflow_client or compare.client()
    candidate = compare.load_run_scores(run_id, mlflow_client=mlflow_client)
    target = _target_version(mlflow_client, model_name, run_id, version)
    champion = _champion(mlflow_client, model_name, alias)
    checks = gate(candidate, champion[1], cfg)
    if champion[0] is not None and champion[1] is None:
        checks.append(_unknown_champion(model_name, alias, champion[0]))
    failed = [c for c in checks if c.passed is False]
    outcome = "promoted" if not failed else ("forced" if force else "refused")
    record = decision_record(
        candidate,
        checks,
        outcome=outcome,
        model_name=model_name,
        alias=alias,
        version=target,
        champion=champion,
        reason=reason.strip() if reason else None,
    )
    record["artifact"] = record_decision(mlflow_client, record)
    if outcome == "refused":
        raise _refusal(record, failed)
    _set_alias(mlflow_client, record)
    logger.info(
        "promote: %s version %s is now @%s (%s)",
        model_name,
        record["model_version"],
        alias,
        outcome,
    )
    return record
