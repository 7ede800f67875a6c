"""Loading the knowledge base from its YAML files, with every problem tied to a file and line.

Layout of a knowledge-base folder (the one shipped lives in ``wildml/kb/data``)::

    kb.yaml                 version, languages, languages every product must cover
    sources.yaml            the publications, reports and regulations entries cite
    cites_codes.yaml        CITES trade-term, purpose and source codes
    species.yaml            species: scientific name, common names, CITES appendix, IUCN
    products.yaml           products: species, CITES trade terms, required languages
    terms/<product>.yaml    per language: terms, qualifiers, product-specific defusers
    contexts/<lang>.yaml    per language: confirming and defusing words for every product
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from wildml.errors import ConfigError
from wildml.kb import schema
from wildml.kb.fold import fold_key

logger = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


class KBError(ConfigError):
    """A knowledge-base file that cannot be read, breaks the schema or contradicts itself."""


@dataclass(frozen=True)
class Issue:
    """One problem found in the knowledge base, located by file and line."""

    level: str  # "error" | "warning"
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.level}: {self.message}"


@dataclass(frozen=True)
class Entry:
    """One matchable string of the base, flattened from the files.

    ``category`` is ``term`` (names a product), ``qualifier`` (unit/form word), ``confirm``
    or ``defuse`` (context rules). ``product`` is ``None`` for rules that apply to all products.
    """

    category: str
    text: str
    key: str
    lang: str
    product: str | None
    kind: str
    rule: str | None
    scope: str
    position: str
    needs_context: bool
    accent_sensitive: bool
    source: str
    confidence: float
    file: str
    line: int


@dataclass
class KnowledgeBase:
    """The loaded knowledge base: facts, vocabulary and what was found wrong with them."""

    root: Path
    manifest: schema.Manifest
    sources: dict[str, schema.Source]
    codes: dict[str, schema.CitesCode]
    species: dict[str, schema.Species]
    products: dict[str, schema.Product]
    entries: list[Entry]
    fingerprint: str
    issues: list[Issue] = field(default_factory=list)

    @property
    def version(self) -> str:
        """The version string from ``kb.yaml``."""
        return self.manifest.version

    @property
    def errors(self) -> list[Issue]:
        """The error-level issues."""
        return [i for i in self.issues if i.level == "error"]

    def terms(self, product: str | None = None, lang: str | None = None) -> list[Entry]:
        """Term entries, optionally of one product and/or language."""
        return [
            e
            for e in self.entries
            if e.category == "term"
            and (product is None or e.product == product)
            and (lang is None or e.lang == lang)
        ]

    def required_languages(self, product: str) -> list[str]:
        """Languages in which ``product`` must have at least one term."""
        declared = self.products[product].required_languages
        return list(declared if declared is not None else self.manifest.default_required_languages)


class _LineLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A safe YAML loader that records the line each mapping starts on."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def default_kb_dir() -> Path:
    """The folder of the knowledge base shipped inside the package."""
    return Path(str(resources.files("wildml.kb") / "data"))


class _Reader:
    """Reads and validates files, collecting issues instead of stopping at the first."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.issues: list[Issue] = []
        self.digest = hashlib.sha256()

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root.parent))
        except ValueError:
            return str(path)

    def error(self, path: Path, line: int, message: str, level: str = "error") -> None:
        self.issues.append(Issue(level, self.rel(path), line, message))

    def read_yaml(self, path: Path) -> Any:
        if not path.is_file():
            self.error(path, 0, "file not found")
            return None
        raw = path.read_bytes()
        self.digest.update(path.name.encode() + b"\0" + raw)
        try:
            return yaml.load(raw.decode("utf-8"), Loader=_LineLoader)
        except UnicodeDecodeError as err:
            self.error(path, 0, f"not UTF-8 text: {err}")
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            line = mark.line + 1 if mark is not None else 0
            problem = getattr(err, "problem", None) or str(err)
            self.error(path, line, f"not valid YAML: {problem}")
        return None

    def parse(self, path: Path, model: type[M], data: Any) -> M | None:
        if data is None:
            return None
        if not isinstance(data, dict):
            self.error(
                path, 1, f"expected a mapping at the top level, found {type(data).__name__}"
            )
            return None
        try:
            return model.model_validate(data)
        except ValidationError as err:
            for problem in err.errors():
                where = ".".join(str(p) for p in problem["loc"])
                line = _line_of(data, problem["loc"])
                self.error(path, line, f"{where}: {problem['msg']}")
            return None

    def load(self, name: str, model: type[M]) -> M | None:
        path = self.root / name
        return self.parse(path, model, _strip_free_maps(self.read_yaml(path)))


def _line_of(data: Any, loc: tuple[Any, ...]) -> int:
    """The line of the deepest mapping on the path ``loc`` inside ``data``."""
    line = data.get("__line__", 0) if isinstance(data, dict) else 0
    node = data
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, dict):
            line = node.get("__line__", line)
    return line


def _strip_free_maps(data: Any) -> Any:
    """Remove line markers from mappings whose keys are data (languages, common names)."""
    if not isinstance(data, dict):
        return data
    if isinstance(data.get("languages"), dict):
        data["languages"].pop("__line__", None)
    for sp in data.get("species", []) or []:
        if isinstance(sp, dict) and isinstance(sp.get("common_names"), dict):
            sp["common_names"].pop("__line__", None)
    return data


def _index(reader: _Reader, path: Path, items: list[Any], what: str) -> dict[str, Any]:
    """Map items by id (or code), reporting duplicates."""
    out: dict[str, Any] = {}
    for item in items:
        key = getattr(item, "id", None) or getattr(item, "code", None)
        if key in out:
            reader.error(
                path, item.line, f"duplicate {what} '{key}' (first at line {out[key].line})"
            )
        out[key] = item
    return out


def _iter_yaml(folder: Path) -> Iterator[Path]:
    if not folder.is_dir():
        return iter(())
    return iter(sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml")))


def load_kb(path: str | Path | None = None, *, strict: bool = True) -> KnowledgeBase:
    """Load and validate a knowledge base.

    Parameters
    ----------
    path
        The knowledge-base folder (or its ``kb.yaml``); ``None`` loads the base shipped in
        the package.
    strict
        Raise on error-level issues (schema, unknown references, duplicate or conflicting
        terms, missing required languages). With ``False`` the issues are only recorded in
        ``KnowledgeBase.issues``, which is what ``wildml kb validate`` reports.

    Returns
    -------
    KnowledgeBase

    Raises
    ------
    KBError
        With every error, each naming its file and line, when ``strict`` and any is found.
    """
    root = Path(path) if path is not None else default_kb_dir()
    if root.is_file():
        root = root.parent
    if not root.is_dir():
        raise KBError(f"{root}: knowledge-base folder not found")
    from wildml.kb.validate import build

    kb = build(_Reader(root))
    for issue in kb.issues:
        if issue.level == "warning":
            logger.warning("%s", issue)
    if strict and kb.errors:
        listed = "\n".join(f"  {issue}" for issue in kb.errors)
        raise KBError(f"knowledge base {root} has {len(kb.errors)} error(s):\n{listed}")
    logger.debug("knowledge base %s: %d entries", kb.version, len(kb.entries))
    return kb


__all__ = ["Entry", "Issue", "KBError", "KnowledgeBase", "fold_key", "load_kb"]
