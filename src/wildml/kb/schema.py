"""The shape of every knowledge-base file, checked with pydantic when the base is loaded.

Each mapping read from YAML carries the line it started on (key ``__line__``, added by the
loader), so an error can name the file and line an expert has to fix.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

TermKind = Literal["plain", "code_word", "medicinal", "emoji"]
Scope = Literal["adjacent", "window", "listing"]
Position = Literal["before", "after", "any"]
CitesAppendix = Literal["I", "II", "III", "none"]
IucnStatus = Literal["EX", "EW", "CR", "EN", "VU", "NT", "LC", "DD", "NE"]


class _Entry(BaseModel):
    """Base of every YAML mapping: unknown fields are errors, the line number is kept."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    line: int = Field(default=0, alias="__line__")


class _Cited(_Entry):
    """An entry that states a fact: it names its source and how sure we are of it."""

    source: str = Field(min_length=1, description="id of an entry in sources.yaml")
    confidence: float = Field(ge=0.0, le=1.0)
    note: str | None = None


class Manifest(_Entry):
    """``kb.yaml``: the version of the base and the languages it promises to cover."""

    version: str
    languages: list[str] = Field(min_length=1)
    default_required_languages: list[str] = Field(default_factory=list)


class Source(_Entry):
    """A publication, report or regulation that entries cite by ``id``."""

    id: str
    kind: Literal["report", "peer_reviewed", "regulation", "dataset", "reference"]
    citation: str = Field(min_length=10)
    year: int | None = None
    url: str | None = None


class CitesCode(_Entry):
    """One CITES code (trade term, purpose or source) and what it stands for."""

    code: str = Field(pattern=r"^[A-Z]{1,3}$")
    field: Literal["term", "purpose", "source"]
    description: str


class CitesCodes(_Entry):
    """``cites_codes.yaml``: the code table products are checked against."""

    origin: str
    codes: list[CitesCode]


class Species(_Cited):
    """One species (or genus when trade cannot tell the species apart)."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    scientific_name: str
    common_names: dict[str, list[str]] = Field(default_factory=dict)
    cites_appendix: CitesAppendix
    iucn_status: IucnStatus


class Product(_Cited):
    """A traded product: the unit the matcher reports and the label set uses."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    species: list[str] = Field(min_length=1)
    cites_terms: list[str] = Field(min_length=1)
    required_languages: list[str] | None = None


class SpeciesFile(_Entry):
    """``species.yaml``."""

    species: list[Species]


class ProductsFile(_Entry):
    """``products.yaml``."""

    products: list[Product]


class Term(_Cited):
    """A word or phrase that names the product, as sellers write it."""

    term: str = Field(min_length=1)
    kind: TermKind = "plain"
    needs_context: bool = Field(
        default=False, description="report only when a product or sale word is near"
    )
    accent_sensitive: bool = Field(
        default=False, description="match only with the diacritics as written here"
    )


class Qualifier(_Cited):
    """A unit, form or processing word that sellers attach to a product (bangle, 克, powder)."""

    term: str = Field(min_length=1)
    accent_sensitive: bool = False


class ContextRule(_Cited):
    """A confirming or defusing word, applying to terms within ``scope`` of it."""

    term: str = Field(min_length=1)
    rule: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    scope: Scope = "window"
    position: Position = Field(
        default="any", description="where the word must stand relative to the term it modifies"
    )
    accent_sensitive: bool = False


class ProductLanguage(_Entry):
    """The terms of one product in one language."""

    terms: list[Term] = Field(default_factory=list)
    qualifiers: list[Qualifier] = Field(default_factory=list)
    defuse: list[ContextRule] = Field(default_factory=list)


class TermsFile(_Entry):
    """``terms/<product>.yaml``: a product's vocabulary, per language."""

    product: str
    languages: dict[str, ProductLanguage]


class ContextFile(_Entry):
    """``contexts/<lang>.yaml``: confirming, defusing and unit words for every product."""

    lang: str
    confirm: list[ContextRule] = Field(default_factory=list)
    defuse: list[ContextRule] = Field(default_factory=list)
    qualifiers: list[Qualifier] = Field(default_factory=list)
