"""``wildml kb``: validate the knowledge base, show its coverage, match text, propose terms."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

logger = logging.getLogger(__name__)

kb_app = typer.Typer(
    help="The species knowledge base: validate, stats, match, propose.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

KbOpt = Annotated[
    Path | None, typer.Option("--kb", help="knowledge-base folder (default: the shipped one)")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]

_STATUS_STYLE = {"confirmed": "bold red", "neutral": "bold yellow", "defused": "green"}


def _console():
    from rich.console import Console

    return Console(soft_wrap=True)


@kb_app.command()
def validate(
    path: Annotated[Path | None, typer.Argument(help="knowledge-base folder")] = None,
) -> None:
    """Check schema, references, duplicate or conflicting terms and language coverage."""
    from wildml.kb.loader import load_kb

    kb = load_kb(path, strict=False)
    for issue in kb.issues:
        typer.echo(str(issue), err=issue.level == "error")
    n_err, n_warn = len(kb.errors), len(kb.issues) - len(kb.errors)
    summary = (
        f"knowledge base {kb.version} at {kb.root}: {len(kb.entries)} entries, "
        f"{len(kb.products)} products, {n_err} error(s), {n_warn} warning(s)"
    )
    typer.echo(summary)
    raise typer.Exit(2 if n_err else 0)


def coverage(kb) -> dict[str, dict[str, int]]:
    """Number of terms per product and language."""
    table = {p: dict.fromkeys(kb.manifest.languages, 0) for p in kb.products}
    for e in kb.terms():
        table[e.product][e.lang] = table[e.product].get(e.lang, 0) + 1
    return table


@kb_app.command()
def stats(kb_path: KbOpt = None, as_json: JsonOpt = False) -> None:
    """Coverage: terms per product and language (0 where a required language is missing)."""
    from rich.table import Table

    from wildml.kb.loader import load_kb

    kb = load_kb(kb_path, strict=False)
    table = coverage(kb)
    if as_json:
        typer.echo(
            json.dumps({"version": kb.version, "terms": table}, ensure_ascii=False, indent=2)
        )
        return
    langs = kb.manifest.languages
    grid = Table(title=f"Knowledge base {kb.version}: terms per product and language")
    grid.add_column("product")
    for lang in langs:
        grid.add_column(lang, justify="right")
    grid.add_column("total", justify="right")
    for product, counts in table.items():
        required = set(kb.required_languages(product))
        cells = [
            f"[red]{counts[lang]}[/red]"
            if lang in required and not counts[lang]
            else str(counts[lang] or "·")
            for lang in langs
        ]
        grid.add_row(product, *cells, str(sum(counts.values())))
    _console().print(grid)


@kb_app.command()
def match(
    text: Annotated[str, typer.Argument(help="listing text; '-' reads standard input")],
    kb_path: KbOpt = None,
    lang: Annotated[str | None, typer.Option(help="language hint")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the knowledge-base evidence in TEXT, spans highlighted by status."""
    from wildml.kb.loader import load_kb
    from wildml.kb.matcher import Matcher

    if text == "-":
        text = sys.stdin.read()
    evidence = Matcher(load_kb(kb_path)).match(text, lang=lang)
    if as_json:
        typer.echo(json.dumps([e.to_dict() for e in evidence], ensure_ascii=False, indent=2))
        return
    _print_evidence(text, evidence)


def _print_evidence(text: str, evidence: list) -> None:
    from rich.table import Table
    from rich.text import Text

    console = _console()
    shown = Text(text)
    for ev in evidence:
        shown.stylize(_STATUS_STYLE[ev.status], ev.start, ev.end)
    console.print(shown)
    if not evidence:
        console.print("no knowledge-base evidence")
        return
    grid = Table()
    for column in ("span", "matched", "term", "product", "lang", "kind", "status", "rule"):
        grid.add_column(column, overflow="fold")
    for ev in evidence:
        grid.add_row(
            f"{ev.start}:{ev.end}",
            ev.matched_text,
            ev.term,
            ev.product,
            ev.lang,
            ev.kind,
            Text(ev.status, style=_STATUS_STYLE[ev.status]),
            ev.rule or "",
        )
    console.print(grid)


@kb_app.command()
def propose(
    data: Annotated[
        Path, typer.Option("--data", help="CSV with text,label or a prepared dataset")
    ],
    product: Annotated[str, typer.Option(help="product the candidates are for")] = "ivory",
    out: Annotated[Path | None, typer.Option(help="write the YAML snippet here")] = None,
    text_column: Annotated[str, typer.Option(help="text column")] = "text",
    label_column: Annotated[str, typer.Option(help="label column (1/0)")] = "label",
    min_count: Annotated[int, typer.Option(help="minimum positives containing the n-gram")] = 3,
    top_k: Annotated[int, typer.Option(help="how many candidates")] = 40,
    kb_path: KbOpt = None,
) -> None:
    """Propose candidate terms: n-grams associated with positives and absent from the base."""
    from wildml.errors import ConfigError
    from wildml.kb import propose as proposer
    from wildml.kb.loader import load_kb

    kb = load_kb(kb_path)
    if product not in kb.products:
        raise ConfigError(f"unknown product '{product}' (known: {', '.join(kb.products)})")
    texts, labels, langs = proposer.read_labelled(data, text_column, label_column, product)
    candidates = proposer.propose(kb, texts, labels, langs, min_count=min_count, top_k=top_k)
    logger.info("%d labelled listings (%d positive): %d candidates",
                len(labels), labels.count(1), len(candidates))  # fmt: skip
    snippet = proposer.to_yaml(candidates, product, Path(data).name)
    if out is None:
        typer.echo(snippet)
    else:
        out.write_text(snippet, encoding="utf-8")
        logger.info("wrote %s", out)
