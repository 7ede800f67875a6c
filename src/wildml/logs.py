"""Logging set-up, done once by the CLI; modules only call ``logging.getLogger(__name__)``."""

from __future__ import annotations

import logging
import sys


def configure(verbose: int = 0) -> None:
    """Route log records to stderr, through rich when stderr is a terminal."""
    level = logging.DEBUG if verbose > 0 else logging.INFO
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(show_path=False, rich_tracebacks=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("mlflow", "alembic", "urllib3", "git", "PIL", "matplotlib", "datasets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
