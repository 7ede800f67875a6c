"""Compose the bundled sample's listing tables from the pieces in ``sample_lexicon.py``.

Writes ``data/sample/listings.csv`` (labelled) and ``data/sample/new_listings.csv`` (unlabelled,
deliberately messy), deterministically from one seed. Run ``scripts/make_sample_photos.py``
afterwards to draw the photos the tables reference, and ``--counts`` to print the table of
listings per language x label x product that ``data/sample/README.md`` quotes::

    .venv/bin/python scripts/make_sample_listings.py
    .venv/bin/python scripts/make_sample_photos.py
    .venv/bin/python scripts/make_sample_listings.py --counts
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import unicodedata
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from sample_lexicon import (
    CHATTER,
    LEX,
    LOOKALIKE_MATERIALS,
    MIXED,
    ORDINARY_PRICES,
    OTHER_PRODUCTS,
    SPECIAL_KINDS,
)

SEED = 1204
LANGS = ["en", "zh", "vi", "th", "id", "fr", "pt", "es"]
COLUMNS = [
    "listing_id",
    "title",
    "description",
    "lang",
    "seller_id",
    "seller_profile",
    "platform",
    "url",
    "posted_at",
    "price",
    "currency",
    "country",
    "images",
]
LABELLED = [*COLUMNS, "label", "product"]
USD_RATE = {
    "USD": 1,
    "CNY": 7.2,
    "VND": 25000,
    "THB": 35,
    "IDR": 16000,
    "EUR": 0.92,
    "BRL": 5.3,
    "MXN": 18,
}
# Per language and listing: how many of each style of positive, and of each negative kind.
POSITIVE_PLAN = {"ivory": (3, 2, 2), "pangolin_scale": (2, 2, 2), "rhino_horn": (2, 2, 2)}
N_LOOKALIKE, N_ORDINARY = 6, 11
EMOJI = ["✨", "🔥", "📦", "💯", "👍", "🙏", "📩", "⭐", "💎", "🎁", "❗", "👉"]
PHOTO_SHARE = 0.55
THOUSANDS = {"vi": ".", "id": ".", "pt": ".", "fr": "\u202f", "es": ","}
# Words that keep their capital letter inside a sentence.
KEEP_CAPITAL = {
    "iPhone",
    "Honda",
    "Toyota",
    "Peugeot",
    "Fiat",
    "Nissan",
    "HP",
    "Dell",
    "Tiger",
    "Rhino",
    "Kopi",
    "Bộ",
    "Ốc",
    "Cà",
}
NO_LANG_SHARE = 0.15


class Composer:
    """Turn (language, item, note, kind) into a full listing row with seeded variation."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.photo_counter: Counter[str] = Counter()
        self.sellers: dict[tuple[str, str], list[dict]] = {}
        self.seller_ids: dict[tuple, str] = {}

    def seller(self, lang: str, role: str) -> dict:
        """Pick a seller of ``role`` (dealer/general); a few sellers post many times."""
        key = (lang, role)
        if key not in self.sellers:
            lex = LEX[lang]
            pool = []
            for profile in lex[f"profiles_{role}"]:
                pool.append(
                    {
                        "profile": profile if self.rng.random() > 0.15 else "",
                        "platform": self.rng.choice(lex["platforms"]),
                        "country": self.rng.choice(lex["countries"]),
                    }
                )
            self.sellers[key] = pool
        return self.rng.choices(self.sellers[key], weights=[5, 3, 2, 1])[0]

    def photos(self, kind: str | None, share: float = PHOTO_SHARE) -> str:
        if kind is None or self.rng.random() > share:
            return ""
        n = self.rng.choices([1, 2, 3], weights=[16, 3, 1])[0]
        names = []
        for _ in range(n):
            names.append(f"photos/{kind}_{self.photo_counter[kind]:03d}.jpg")
            self.photo_counter[kind] += 1
        return ";".join(names)

    def price(self, lang: str, usd_range: tuple[float, float]) -> tuple[str, str]:
        """Return (numeric price, price as the seller writes it)."""
        currency = LEX[lang]["currency"]
        usd = self.rng.uniform(*usd_range)
        value = usd * USD_RATE[currency]
        step = 10 ** max(0, len(str(int(value))) - 2)
        value = max(step, round(value / step) * step)
        written = f"{value:,.0f}".replace(",", THOUSANDS.get(lang, ","))
        return str(int(value)), LEX[lang]["money"].format(v=written)

    def body(self, lang: str, item: str, note: str, price_text: str) -> tuple[str, str]:
        """Compose a title and description from the shared sentence frames."""
        lex, rng = LEX[lang], self.rng
        emo = rng.choice(EMOJI)
        title = rng.choice(
            [
                item,
                f"{item} {rng.choice(lex['tags'])}",
                f"[{rng.choice(lex['tags'])}] {item}",
                f"{emo} {item} {emo}",
                f"{item} - {price_text}" if price_text else item,
                item.upper() if lang in {"en", "fr", "pt", "es", "id"} else item,
            ]
        )
        parts = [rng.choice(lex["openers"]).format(item=_in_sentence(item))]
        if note:
            parts.append(note)
        parts += rng.sample(lex["common"], k=rng.choice([0, 1, 1, 2, 3]))
        if price_text:
            parts.append(rng.choice(lex["price"]).format(p=price_text))
        elif rng.random() < 0.6:
            parts.append(rng.choice(lex["no_price"]))
        if rng.random() < 0.8:
            parts.append(rng.choice(lex["contact"]).format(n=rng.randint(1, 9)))
        if rng.random() < 0.35:
            parts.insert(
                rng.randrange(len(parts) + 1), "".join(rng.sample(EMOJI, k=rng.randint(1, 3)))
            )
        sep = rng.choice([" ", " ", "\n", " | ", "\n\n", " - "])
        description = sep.join(parts)
        if rng.random() < 0.12:  # some sellers write everything in the title
            title, description = f"{title} {description}", ""
        return title, description

    def row(
        self,
        lang: str,
        item: str,
        note: str,
        kind: str | None,
        *,
        role: str,
        usd_range: tuple[float, float] | None,
        label: int | None,
        product: str,
    ) -> dict:
        seller = self.seller(lang, role)
        if usd_range and self.rng.random() < 0.8:
            price, price_text = self.price(lang, usd_range)
        else:
            price, price_text = "", ""
        title, description = self.body(lang, item, note, price_text)
        return self._fields(lang, title, description, seller, role, price, kind, label, product)

    def _fields(self, lang, title, description, seller, role, price, kind, label, product) -> dict:
        start = datetime(2023, 1, 1)
        posted = start + timedelta(minutes=self.rng.randrange(60 * 24 * 1400))
        domain = self.rng.choice(["example.com", "example.org"])
        row = {
            "title": title,
            "description": description,
            "lang": lang,
            "written_lang": lang,
            "seller_key": (lang, role, seller["profile"], seller["platform"]),
            "seller_profile": seller["profile"],
            "platform": seller["platform"],
            "url_base": f"https://{seller['platform']}.{domain}/{lang}/p/",
            "posted_at": posted.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "price": price,
            "currency": LEX[lang]["currency"] if price else "",
            "country": seller["country"],
            "images": self.photos(kind),
            "label": label,
            "product": product,
        }
        return row


def _in_sentence(item: str) -> str:
    """Lower-case the first letter of an item that starts a title but sits mid-sentence."""
    first = item.split(" ", 1)[0]
    if first in KEEP_CAPITAL or first.isupper() or not first[:1].isupper():
        return item
    return item[0].lower() + item[1:]


def strip_diacritics(text: str) -> str:
    """Vietnamese typed without accents, as many sellers do on phones."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize(
        "NFC", "".join(c for c in decomposed if not unicodedata.combining(c))
    )


def positives(comp: Composer, lang: str) -> list[dict]:
    """The labelled positives of one language: plain, code-word and obfuscated."""
    lex, rng, rows = LEX[lang], comp.rng, []
    for product, plan in POSITIVE_PLAN.items():
        for style, count in zip(("plain", "code", "obf"), plan, strict=True):
            for term in rng.sample(lex[product][style], k=count):
                if product == "ivory":
                    obj = rng.choice(lex["objects"])
                    item = lex["pattern"].format(mat=term, obj=obj)
                else:
                    item = term
                usd = (80, 2500) if product == "ivory" else (150, 6000)
                role = "dealer" if rng.random() < 0.7 else "general"
                rows.append(
                    comp.row(
                        lang,
                        item,
                        rng.choice(lex["pos_notes"]),
                        product,
                        role=role,
                        usd_range=usd,
                        label=1,
                        product=product,
                    )
                )
    return rows


def other_positives(comp: Composer, lang: str, products: list[str]) -> list[dict]:
    lex = LEX[lang]
    return [
        comp.row(
            lang,
            lex["other"][p],
            comp.rng.choice(lex["pos_notes"]),
            p,
            role="dealer",
            usd_range=(40, 1500),
            label=1,
            product=p,
        )
        for p in products
    ]


def negatives(comp: Composer, lang: str) -> list[dict]:
    """Hard look-alikes, non-sale articles and ordinary goods of one language."""
    lex, rng, rows = LEX[lang], comp.rng, []
    for i in rng.sample(range(len(lex["materials"])), k=N_LOOKALIKE):
        mat, obj = lex["materials"][i], rng.choice(lex["objects"])
        item = lex["pattern"].format(mat=mat, obj=obj)
        note = rng.choice(lex["mat_notes"]).format(mat=mat)
        role = "dealer" if rng.random() < 0.5 else "general"
        rows.append(
            comp.row(
                lang,
                item,
                note,
                LOOKALIKE_MATERIALS[i],
                role=role,
                usd_range=(5, 300),
                label=0,
                product="",
            )
        )
    for text, (_, kind, usd) in zip(lex["specials"], SPECIAL_KINDS, strict=True):
        item, note = text.split("|")
        role = "general" if rng.random() < 0.75 else "dealer"
        rows.append(
            comp.row(lang, item, note, kind, role=role, usd_range=usd, label=0, product="")
        )
    for text, kind in zip(lex["articles"], ["ivory", "rhino_horn", "ivory"], strict=True):
        title, description = text.split("|")
        seller = comp.seller(lang, "general")
        rows.append(comp._fields(lang, title, description, seller, "general", "", kind, 0, ""))
    for i in rng.sample(range(len(lex["ordinary"])), k=N_ORDINARY):
        note = rng.choice(lex["ordinary_notes"])
        role = "general" if rng.random() < 0.85 else "dealer"
        rows.append(
            comp.row(
                lang,
                lex["ordinary"][i],
                note,
                "other",
                role=role,
                usd_range=ORDINARY_PRICES[i],
                label=0,
                product="",
            )
        )
    return rows


def mixed(comp: Composer) -> list[dict]:
    rows = []
    for lang, label, product, kind, title, description in MIXED:
        role = "dealer" if label else "general"
        rows.append(
            comp._fields(
                lang, title, description, comp.seller(lang, role), role, "", kind, label, product
            )
        )
    return rows


def repost(comp: Composer, row: dict) -> dict:
    """The same seller posting the listing again a few days later with small edits."""
    rng, new = comp.rng, dict(row)
    later = datetime.strptime(row["posted_at"], "%Y-%m-%dT%H:%M:%SZ") + timedelta(
        days=rng.randint(1, 40), minutes=rng.randint(0, 600)
    )
    new["posted_at"] = later.strftime("%Y-%m-%dT%H:%M:%SZ")
    note = rng.choice(LEX[row["lang"]]["repost"])
    edit = rng.choice(["prefix", "suffix", "price", "emoji"])
    if edit == "prefix":
        new["title"] = f"{note} {row['title']}"
    elif edit == "suffix" or not row["price"]:
        new["description"] = f"{row['description']} {note}".strip()
    elif edit == "price":
        new["price"] = str(int(int(row["price"]) * rng.choice([0.8, 0.9, 0.95])))
        new["description"] = f"{row['description']} {note}".strip()
    else:
        new["title"] = f"{row['title']} {rng.choice(EMOJI)}"
    return new


def finalise(comp: Composer, rows: list[dict], prefix: str) -> list[dict]:
    """Shuffle, then give listing ids, seller ids (stable across tables) and URLs."""
    rng, seller_ids = comp.rng, comp.seller_ids
    rng.shuffle(rows)
    for n, row in enumerate(rows, start=1):
        key = row.pop("seller_key")
        seller_ids.setdefault(key, f"s{len(seller_ids) + 1:04d}")
        row["seller_id"] = seller_ids[key]
        row["listing_id"] = f"{prefix}{n:04d}"
        row["url"] = row.pop("url_base") + f"{rng.randint(10**6, 10**7)}"
    return rows


def script_habits(rows: list[dict], rng: random.Random) -> None:
    """Traditional characters in some Chinese posts, no accents in some Vietnamese ones."""
    from opencc import OpenCC

    to_traditional = OpenCC("s2t")
    for row in rows:
        if row["lang"] == "zh" and rng.random() < 0.4:
            row["title"] = to_traditional.convert(row["title"])
            row["description"] = to_traditional.convert(row["description"])
            row["seller_profile"] = to_traditional.convert(row["seller_profile"])
        if row["lang"] == "vi" and rng.random() < 0.25:
            row["title"] = strip_diacritics(row["title"])
            row["description"] = strip_diacritics(row["description"])


def build_labelled(rng: random.Random) -> tuple[list[dict], Composer]:
    comp = Composer(rng)
    rows: list[dict] = []
    others = OTHER_PRODUCTS * 3
    rng.shuffle(others)
    for i, lang in enumerate(LANGS):
        rows += positives(comp, lang) + negatives(comp, lang)
        rows += other_positives(comp, lang, others[i * 2 : i * 2 + 2])
    rows += mixed(comp)
    script_habits(rows, rng)
    near = [repost(comp, r) for r in rng.sample(rows, k=20)]
    exact = [{**r, "twin": r} for r in rng.sample(rows, k=5)]
    rows = finalise(comp, rows + near + exact, "smp-")
    for row in rows:
        if rng.random() < NO_LANG_SHARE:
            row["lang"] = ""
    for row in rows:
        twin = row.pop("twin", None)
        if twin is not None:  # an exact duplicate: the same post captured twice
            row.update({k: twin[k] for k in COLUMNS if k != "listing_id"})
    return rows, comp


def messy_rows(comp: Composer) -> list[dict]:
    """Reports as they arrive: empty, hostile, broken or oversized fields."""
    long_story = " ".join(
        f"Day {i}: sorting my late uncle's things, boxes of books, tools and old letters."
        for i in range(125)
    )
    cases = [
        ("en", "", "", "photos/ivory_900.jpg"),
        ("", "", "", ""),
        (
            "en",
            "Old carving, photo attached",
            "See photo, make an offer.",
            "photos/broken_truncated.jpg",
        ),
        ("en", "Bangle for sale", "Check the picture.", "../../etc/passwd"),
        ("fr", "Bracelet ancien", "Photo jointe.", "photos/missing_001.jpg"),
        (
            "en",
            "<script>alert(1)</script> ivory bangle",
            "Real old material <img src=x onerror=alert(document.cookie)> DM me",
            "",
        ),
        ("en", '=HYPERLINK("http://example.com/x","click")', "Cheap phone case", ""),
        ("es", "+cmd|' /C calc'!A0", "Vendo figura de resina.", ""),
        ("pt", "@SUM(1+1)*cmd|' /C calc'!A0", "-2+3 pulseira de marfim legítimo", ""),
        (
            "en",
            "Estate clear-out, everything must go",
            long_story + " Also one white gold bangle, old material, DM. " + long_story,
            "",
        ),
        ("en", "i\u200bv\u200bo\u200br\u200by bangle", "real i\u200cvory, old\x07 stock", ""),
        ("zh", "象\u200d牙手镯", "老\x0b料，私聊\x1f", ""),
        ("vi", "Vòng n\u00adgà voi", "hàng\u202e trắng, ib", ""),
    ]
    rows = []
    for lang, title, description, images in cases:
        seller = comp.seller(lang or "en", "general")
        row = comp._fields(lang or "en", title, description, seller, "general", "", None, None, "")
        row["lang"], row["images"] = lang, images
        rows.append(row)
    return rows


def chatter(comp: Composer, start: int) -> list[dict]:
    """Short everyday messages of every language (label 0), numbered after ``start``.

    Drawn from their own random stream, so the rows before them stay as they were.
    """
    rows = []
    for lang in LANGS:
        for message in CHATTER[lang]:
            seller = comp.seller(lang, "general")
            rows.append(comp._fields(lang, message, "", seller, "general", "", None, 0, ""))
    comp.rng.shuffle(rows)
    for n, row in enumerate(rows, start=start):
        key = row.pop("seller_key")
        comp.seller_ids.setdefault(key, f"s{len(comp.seller_ids) + 1:04d}")
        row["seller_id"] = comp.seller_ids[key]
        row["listing_id"] = f"smp-{n:04d}"
        row["url"] = row.pop("url_base") + f"{comp.rng.randint(10**6, 10**7)}"
    return rows


def build_new(rng: random.Random, comp: Composer, labelled: list[dict]) -> list[dict]:
    """About 60 unlabelled listings: ordinary traffic, reposts and messy reports."""
    rows = []
    for i, lang in enumerate(LANGS):
        pool = positives(comp, lang) + negatives(comp, lang)
        rows += rng.sample(pool, k=5 + i % 2)
    rows += messy_rows(comp)
    rows = finalise(comp, rows, "new-")
    for row in rng.sample(labelled, k=3):  # exact reposts of labelled listings
        rows.append({k: row[k] for k in COLUMNS} | {"listing_id": f"new-{len(rows) + 1:04d}"})
    twin = dict(rng.choice(rows[:40]))
    twin["title"] = twin["title"] + " (edited)"
    rows.insert(rng.randrange(len(rows)), twin)  # a second row under an existing id
    for row in rows:
        row["lang"] = row["lang"] if rng.random() > NO_LANG_SHARE else ""
    return rows


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(
            fh,
            fieldnames=columns,
            extrasaction="ignore",
            quoting=csv.QUOTE_MINIMAL,
            lineterminator="\r\n",
        )
        writer.writeheader()
        writer.writerows(rows)


def print_counts(rows: list[dict]) -> None:
    """Print listings per written language x label x product as a Markdown table."""
    cols = ["ivory", "pangolin_scale", "rhino_horn", "other protected", "negative"]
    table: dict[str, Counter] = {}
    for row in rows:
        if row["label"] == 0:
            col = "negative"
        else:
            col = row["product"] if row["product"] in cols else "other protected"
        table.setdefault(row["written_lang"], Counter())[col] += 1
        table[row["written_lang"]]["lang empty"] += row["lang"] == ""
    cols.append("lang empty")
    print("| written in | " + " | ".join(cols) + " | total |")
    print("|" + " --- |" * (len(cols) + 2))
    for lang in LANGS:
        c = table[lang]
        total = sum(c.values()) - c["lang empty"]
        print(f"| {lang} | " + " | ".join(str(c[k]) for k in cols) + f" | {total} |")
    c = sum(table.values(), Counter())
    total = sum(c.values()) - c["lang empty"]
    print("| all | " + " | ".join(str(c[k]) for k in cols) + f" | {total} |")
    others = Counter(r["product"] for r in rows if r["product"] in OTHER_PRODUCTS)
    print(
        "\nother protected products: " + ", ".join(f"{k} {v}" for k, v in sorted(others.items()))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    root = Path(__file__).resolve().parents[1]
    parser.add_argument("--out", type=Path, default=root / "data" / "sample")
    parser.add_argument("--counts", action="store_true", help="print the counts table and exit")
    args = parser.parse_args()
    rng = random.Random(SEED)
    labelled, comp = build_labelled(rng)
    new = build_new(rng, comp, labelled)
    talk = Composer(random.Random(SEED + 1))
    talk.sellers, talk.seller_ids = comp.sellers, comp.seller_ids
    labelled += chatter(talk, start=len(labelled) + 1)
    if args.counts:
        print_counts(labelled)
        return
    write_csv(args.out / "listings.csv", labelled, LABELLED)
    write_csv(args.out / "new_listings.csv", new, COLUMNS)
    print(f"wrote {len(labelled)} labelled listings", file=sys.stderr)


if __name__ == "__main__":
    main()
