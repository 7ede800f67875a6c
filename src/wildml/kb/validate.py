"""Cross-file checks of the knowledge base: references, duplicates, conflicts, coverage."""

from __future__ import annotations

from pathlib import Path

from wildml.kb import schema
from wildml.kb.fold import fold_key
from wildml.kb.loader import Entry, Issue, KnowledgeBase, _index, _iter_yaml, _Reader


def build(reader: _Reader) -> KnowledgeBase:
    """Read every file under ``reader.root`` and return the base with its issues."""
    root = reader.root
    manifest = reader.load("kb.yaml", schema.Manifest) or schema.Manifest(
        version="invalid", languages=["und"]
    )
    sources_file = reader.load("sources.yaml", _SourcesFile)
    sources = _index(
        reader, root / "sources.yaml", sources_file.sources if sources_file else [], "source"
    )
    codes_file = reader.load("cites_codes.yaml", schema.CitesCodes)
    codes = _index(
        reader, root / "cites_codes.yaml", codes_file.codes if codes_file else [], "code"
    )
    species_file = reader.load("species.yaml", schema.SpeciesFile)
    species = _index(
        reader, root / "species.yaml", species_file.species if species_file else [], "species"
    )
    products_file = reader.load("products.yaml", schema.ProductsFile)
    products = _index(
        reader, root / "products.yaml", products_file.products if products_file else [], "product"
    )

    checker = _Checker(reader, manifest, sources, codes, species, products)
    checker.check_facts()
    entries = checker.read_terms() + checker.read_contexts()
    checker.check_duplicates(entries)
    checker.check_coverage(entries)
    return KnowledgeBase(
        root=root,
        manifest=manifest,
        sources=sources,
        codes=codes,
        species=species,
        products=products,
        entries=entries,
        fingerprint=reader.digest.hexdigest()[:16],
        issues=reader.issues,
    )


class _SourcesFile(schema._Entry):
    sources: list[schema.Source]


class _Checker:
    """Holds the parsed fact files and checks the vocabulary against them."""

    def __init__(self, reader, manifest, sources, codes, species, products) -> None:
        self.reader = reader
        self.manifest = manifest
        self.sources = sources
        self.codes = codes
        self.species = species
        self.products = products

    def _cited(self, path: Path, entry: schema._Cited) -> None:
        if entry.source not in self.sources:
            self.reader.error(
                path, entry.line, f"unknown source '{entry.source}' (not in sources.yaml)"
            )

    def check_facts(self) -> None:
        """Species, codes and sources that products and species refer to must exist."""
        root = self.reader.root
        for sp in self.species.values():
            self._cited(root / "species.yaml", sp)
        for product in self.products.values():
            path = root / "products.yaml"
            self._cited(path, product)
            for sp in product.species:
                if sp not in self.species:
                    self.reader.error(
                        path, product.line, f"product '{product.id}': unknown species '{sp}'"
                    )
            for code in product.cites_terms:
                known = self.codes.get(code)
                if known is None or known.field != "term":
                    self.reader.error(
                        path,
                        product.line,
                        f"product '{product.id}': '{code}' is not a CITES trade-term "
                        "code in cites_codes.yaml",
                    )
            for lang in product.required_languages or []:
                self._lang(path, product.line, lang)

    def _lang(self, path: Path, line: int, lang: str) -> bool:
        if lang in self.manifest.languages:
            return True
        self.reader.error(path, line, f"language '{lang}' is not listed in kb.yaml languages")
        return False

    def read_terms(self) -> list[Entry]:
        """Entries from ``terms/*.yaml``."""
        entries: list[Entry] = []
        for path in _iter_yaml(self.reader.root / "terms"):
            parsed = self.reader.parse(path, schema.TermsFile, _strip(self.reader.read_yaml(path)))
            if parsed is None:
                continue
            if parsed.product not in self.products:
                self.reader.error(
                    path, parsed.line, f"unknown product '{parsed.product}' (not in products.yaml)"
                )
                continue
            if path.stem != parsed.product:
                self.reader.error(
                    path,
                    parsed.line,
                    f"file name should be {parsed.product}.yaml",
                    level="warning",
                )
            for lang, block in parsed.languages.items():
                if self._lang(path, block.line, lang):
                    entries += self._block(path, parsed.product, lang, block)
        return entries

    def _block(
        self, path: Path, product: str, lang: str, block: schema.ProductLanguage
    ) -> list[Entry]:
        out = [self._entry(path, "term", lang, product, t) for t in block.terms]
        out += [self._entry(path, "qualifier", lang, product, q) for q in block.qualifiers]
        out += [self._entry(path, "defuse", lang, product, r) for r in block.defuse]
        return out

    def read_contexts(self) -> list[Entry]:
        """Entries from ``contexts/*.yaml`` (apply to every product)."""
        entries: list[Entry] = []
        for path in _iter_yaml(self.reader.root / "contexts"):
            parsed = self.reader.parse(path, schema.ContextFile, self.reader.read_yaml(path))
            if parsed is None or not self._lang(path, parsed.line, parsed.lang):
                continue
            entries += [self._entry(path, "confirm", parsed.lang, None, r) for r in parsed.confirm]
            entries += [self._entry(path, "defuse", parsed.lang, None, r) for r in parsed.defuse]
            entries += [
                self._entry(path, "qualifier", parsed.lang, None, q) for q in parsed.qualifiers
            ]
        return entries

    def _entry(self, path: Path, category: str, lang: str, product: str | None, item) -> Entry:
        self._cited(path, item)
        key = fold_key(item.term)
        if not key:
            self.reader.error(path, item.line, f"'{item.term}' folds to an empty string")
        return Entry(
            category=category,
            text=item.term,
            key=key,
            lang=lang,
            product=product,
            kind=getattr(item, "kind", category),
            rule=getattr(item, "rule", None),
            scope=getattr(item, "scope", "window"),
            position=getattr(item, "position", "any"),
            needs_context=getattr(item, "needs_context", False),
            accent_sensitive=item.accent_sensitive,
            source=item.source,
            confidence=item.confidence,
            file=self.reader.rel(path),
            line=item.line,
        )

    def check_duplicates(self, entries: list[Entry]) -> None:
        """Same string twice in one role is a duplicate; in clashing roles, a conflict."""
        seen: dict[tuple[str, str | None, str, bool], Entry] = {}
        for e in entries:
            slot = (e.category, e.product, e.key, e.accent_sensitive)
            first = seen.get(slot)
            if first is not None and first.lang == e.lang:
                self._issue(
                    e, f"duplicate {e.category} '{e.text}' (also at {first.file}:{first.line})"
                )
            seen.setdefault(slot, e)
        by_key: dict[str, list[Entry]] = {}
        for e in entries:
            # accent-sensitive entries only clash with entries spelled the same way
            exact = "\0" + e.text.casefold() if e.accent_sensitive else ""
            by_key.setdefault(e.key + exact, []).append(e)
        for same in by_key.values():
            self._conflicts(same)

    def _conflicts(self, same: list[Entry]) -> None:
        terms = [e for e in same if e.category == "term"]
        products = {e.product for e in terms}
        if len(products) > 1:
            first = terms[0]
            for e in terms[1:]:
                if e.product != first.product:
                    self._issue(
                        e,
                        f"conflicting term '{e.text}': names '{e.product}' here and "
                        f"'{first.product}' at {first.file}:{first.line}",
                    )
        for e in same:
            if e.category in ("confirm", "defuse", "qualifier"):
                clash = [t for t in terms if e.product in (None, t.product)]
                if clash:
                    t = clash[0]
                    self._issue(
                        e,
                        f"conflicting {e.category} '{e.text}': it is also a term of "
                        f"'{t.product}' at {t.file}:{t.line}",
                    )
        roles = {(e.category, e.product) for e in same if e.category in ("confirm", "defuse")}
        if {c for c, _ in roles} == {"confirm", "defuse"} and len({p for _, p in roles}) == 1:
            e = next(x for x in same if x.category == "defuse")
            self._issue(e, f"conflicting rule '{e.text}': both confirming and defusing")

    def _issue(self, e: Entry, message: str, level: str = "error") -> None:
        self.reader.issues.append(Issue(level, e.file, e.line, message))

    def check_coverage(self, entries: list[Entry]) -> None:
        """Every product needs terms in its required languages; every language needs contexts."""
        have = {(e.product, e.lang) for e in entries if e.category == "term"}
        kb = KnowledgeBase(
            self.reader.root,
            self.manifest,
            self.sources,
            self.codes,
            self.species,
            self.products,
            [],
            "",
        )
        path = self.reader.root / "products.yaml"
        for product in self.products.values():
            for lang in kb.required_languages(product.id):
                if (product.id, lang) not in have:
                    self.reader.error(
                        path,
                        product.line,
                        f"product '{product.id}' has no terms in required language "
                        f"'{lang}' (add them to terms/{product.id}.yaml)",
                    )
        rules = {(e.lang, e.category) for e in entries if e.product is None}
        for lang in self.manifest.languages:
            for category in ("confirm", "defuse"):
                if (lang, category) not in rules:
                    self.reader.error(
                        self.reader.root / "kb.yaml",
                        self.manifest.line,
                        f"language '{lang}' has no '{category}' rules "
                        f"(add them to contexts/{lang}.yaml)",
                    )


def _strip(data):
    if isinstance(data, dict) and isinstance(data.get("languages"), dict):
        data["languages"].pop("__line__", None)
    return data
