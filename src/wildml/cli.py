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


def _register_optional() -> None:
    """Attach sub-apps that live in their own modules."""
    from wildml.kb.cli import kb_app

    app.add_typer(kb_app, name="kb", help="The species knowledge base: validate, stats, match.")


def main() -> None:
    """Entry point: run the CLI, turning user errors into a message and an exit code."""
    _register_optional()
    try:
        app(standalone_mode=False)
    except WildmlError as err:
        logger.error("%s", err)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        logger.error("interrupted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as err:  # click's usage errors arrive here in non-standalone mode
        import click

        if isinstance(err, click.ClickException):
            err.show()
            sys.exit(err.exit_code)
        if isinstance(err, click.exceptions.Abort):
            sys.exit(130)
        raise


if __name__ == "__main__":
    main()
