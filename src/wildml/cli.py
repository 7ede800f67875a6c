"""The ``wildml`` command line: one subcommand per DVC stage, plus tools for each user.

Heavy libraries (torch, mlflow, transformers) are imported inside the commands that need them,
so ``wildml --help`` and light commands start fast.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from wildml.errors import WildmlError
from wildml.logs import configure

app = typer.Typer(
    name="wildml",
    help="Find online listings that offer protected-wildlife products.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
logger = logging.getLogger("wildml")
# Exit code of an unexpected failure (a bug), distinct from every outcome the commands report.
EXIT_INTERNAL = 70

ParamsOpt = Annotated[
    Path, typer.Option("--params", "-p", help="params file; paths in it are relative to it")
]


@app.callback()
def _main(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True)] = 0,
) -> None:
    configure(verbose)


@app.command()
def prepare(params: ParamsOpt = Path("params.yaml")) -> None:
    """Validate, normalise, de-duplicate and split listings and photos."""
    from wildml.prepare import run

    run(params)


@app.command("train-image")
def train_image(params: ParamsOpt = Path("params.yaml")) -> None:
    """Train the product-photo model on the prepared photos."""
    from wildml.image.train import run

    run(params)


@app.command()
def fuse(params: ParamsOpt = Path("params.yaml")) -> None:
    """Stack text, photo and KB signals into one calibrated listing score with tiers."""
    from wildml.fuse import run

    run(params)


@app.command()
def evaluate(params: ParamsOpt = Path("params.yaml")) -> None:
    """Score the fused model on the test split: metrics.json, plots, MLflow."""
    from wildml.evaluate import run

    run(params)


@app.command("train-text")
def train_text(params: ParamsOpt = Path("params.yaml")) -> None:
    """Train the multilingual text classifier; write models/text/ and its scores."""
    from wildml.text.train import run

    run(params)


RunsArg = Annotated[list[str] | None, typer.Argument(help="MLflow ids of evaluate runs")]


@app.command()
def compare(
    runs: RunsArg = None,
    exp: Annotated[
        list[str] | None, typer.Option("--exp", help="DVC experiment name (repeatable)")
    ] = None,
    experiment: Annotated[
        str | None, typer.Option(help="MLflow experiment (default: base.experiment)")
    ] = None,
    last: Annotated[int | None, typer.Option(help="the last N evaluate runs")] = None,
    baseline: Annotated[
        str | None, typer.Option(help="baseline run (default: the champion)")
    ] = None,
    no_champion: Annotated[
        bool, typer.Option("--no-champion", help="no baseline: figures only")
    ] = False,
    metric: Annotated[list[str] | None, typer.Option(help="metric (repeatable)")] = None,
    markdown: Annotated[Path | None, typer.Option(help="write Markdown here")] = None,
    html: Annotated[Path | None, typer.Option(help="write self-contained HTML here")] = None,
    plots_dir: Annotated[Path, typer.Option(help="PR and reliability PNGs")] = Path(
        "reports/compare"
    ),
    no_plots: Annotated[bool, typer.Option("--no-plots", help="skip the PNGs")] = False,
    n_boot: Annotated[int | None, typer.Option(help="bootstrap resamples")] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Compare evaluate runs with the champion: deltas with paired intervals, per group."""
    from rich.console import Console

    from wildml.compare import KEY_METRICS, rich_table, run_compare

    comparison = run_compare(
        runs or [],
        dvc_experiments=exp or [],
        experiment=experiment,
        last=last,
        baseline=baseline,
        use_champion=not no_champion,
        metric_names=metric or KEY_METRICS,
        params_path=params,
        n_boot=n_boot,
        plots_dir=None if no_plots else plots_dir,
        markdown_path=markdown,
        html_path=html,
    )
    console = Console()
    Console(width=None if console.is_terminal else 200).print(rich_table(comparison))


@app.command()
def promote(
    run: Annotated[str, typer.Argument(help="MLflow id of the candidate's evaluate run")],
    alias: Annotated[str | None, typer.Option(help="alias (default: promote.alias)")] = None,
    force: Annotated[bool, typer.Option("--force", help="promote despite failures")] = False,
    reason: Annotated[str | None, typer.Option(help="why, required with --force")] = None,
    model_name: Annotated[str | None, typer.Option(help="registered model")] = None,
    version: Annotated[str | None, typer.Option(help="model version to promote")] = None,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Gate a candidate against the champion; on success move the registry alias to it."""
    from wildml.promote import Check, describe
    from wildml.promote import promote as run_promote

    record = run_promote(
        run,
        alias=alias,
        params_path=params,
        force=force,
        reason=reason,
        model_name=model_name,
        version=version,
    )
    for check in record["checks"]:
        typer.echo(describe(Check(**check)))
    typer.echo(
        f"{record['model_name']} version {record['model_version']} is now "
        f"@{record['alias']} ({record['decision']}); decision: {record['artifact']}"
    )


@app.command()
def export(params: ParamsOpt = Path("params.yaml")) -> None:
    """Build the verifiable scoring package (models/scorer) and register it in MLflow."""
    from wildml.export import run

    run(params)


@app.command()
def score(
    inputs: Annotated[list[Path], typer.Argument(help="listing files: CSV, JSON Lines, Parquet")],
    package: Annotated[Path, typer.Option(help="scoring package folder")] = Path("models/scorer"),
    out: Annotated[Path, typer.Option(help="queue file: .csv, .parquet or .jsonl")] = Path(
        "queue.csv"
    ),
    images_root: Annotated[
        Path | None, typer.Option(help="folder photo paths are relative to")
    ] = None,
    params: Annotated[
        Path | None, typer.Option("--params", "-p", help="params file with a score section")
    ] = None,
    columns: Annotated[
        str | None, typer.Option(help="column mapping field=column,... (overrides params)")
    ] = None,
    report: Annotated[Path | None, typer.Option(help="also write an HTML report here")] = None,
    chunk_size: Annotated[int | None, typer.Option(help="listings per checkpointed chunk")] = None,
    delimiter: Annotated[
        str | None, typer.Option(help="CSV field delimiter (default ',', tab for .tsv)")
    ] = None,
) -> None:
    """Score new listings into a ranked review queue; re-run the same command to resume."""
    from wildml.score_cli import build_job, run_job

    job = build_job(
        inputs=inputs,
        package=package,
        out=out,
        images_root=images_root,
        params=params,
        columns=columns,
        report=report,
        chunk_size=chunk_size,
        delimiter=delimiter,
    )
    code = run_job(job)
    if code:
        # Exit with the code itself: in non-standalone mode click would swallow typer.Exit.
        sys.exit(code)


def _register_optional() -> None:
    """Attach sub-apps that live in their own modules."""
    from wildml.kb.cli import kb_app

    app.add_typer(kb_app, name="kb", help="The species knowledge base: validate, stats, match.")


def main() -> None:
    """Entry point: run the CLI, turning user errors into a message and an exit code."""
    _register_optional()
    try:
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except WildmlError as err:
        logger.error("%s", err)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        logger.error("interrupted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except OSError as err:
        # A file that cannot be read or written (full disk, read-only mount, a path that is
        # not a folder): the message names it, and the exit code is the one for bad input.
        logger.error("%s", err)
        sys.exit(2)
    except Exception as err:  # usage errors arrive here in non-standalone mode
        if _is_click_error(err, "ClickException"):
            err.show()
            sys.exit(2 if err.exit_code in (None, 1) else err.exit_code)
        if _is_click_error(err, "Abort"):
            sys.exit(130)
        # A bug: keep the traceback, and an exit code no normal outcome uses (sysexits'
        # EX_SOFTWARE), so that scripts never read a crash as "done with rejects" (1).
        logger.exception("internal error: %s", err)
        sys.exit(EXIT_INTERNAL)


def _is_click_error(err: BaseException, name: str) -> bool:
    """True for click's exception ``name``, from click itself or the copy typer bundles."""
    import click

    bundled = getattr(getattr(typer, "_click", None), "exceptions", None)
    classes = [getattr(module, name, None) for module in (click.exceptions, bundled)]
    return any(cls is not None and isinstance(err, cls) for cls in classes)


if __name__ == "__main__":
    main()
