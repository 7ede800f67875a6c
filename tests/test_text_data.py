"""Hand-written multilingual listings for the text-model tests, and a check of the builder.

Other ``test_text*`` modules import :func:`listings_frame` and :func:`write_prepared`.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd

# Per language: (product phrases offered for sale, ordinary goods, sale words, news words).
LANGS = {
    "en": (
        ["carved ivory bangle", "old ivory tusk", "pangolin scales", "rhino horn cup"],
        ["leather handbag", "wooden chair", "phone case", "cotton shirt"],
        ["for sale, DM for price", "selling now $120", "ready stock, ship today"],
        ["police seized ivory at the port", "museum shows ivory history"],
    ),
    "zh": (
        ["象牙手镯", "老象牙摆件", "穿山甲片", "犀牛角杯"],
        ["皮革手提包", "木椅子", "手机壳", "棉衬衫"],
        ["出售，私聊价格", "现货 价格 500元", "包邮 有货"],
        ["海关查获象牙", "博物馆展出象牙历史"],
    ),
    "vi": (
        ["vòng ngà voi", "ngà voi cũ", "vảy tê tê", "sừng tê giác"],
        ["túi da", "ghế gỗ", "ốp điện thoại", "áo sơ mi"],
        ["cần bán, inbox giá", "bán gấp 2 triệu", "có sẵn, ship ngay"],
        ["công an thu giữ ngà voi", "bảo tàng trưng bày ngà voi"],
    ),
    "th": (
        ["กำไลงาช้าง", "งาช้างเก่า", "เกล็ดตัวนิ่ม", "นอแรด"],
        ["กระเป๋าหนัง", "เก้าอี้ไม้", "เคสโทรศัพท์", "เสื้อเชิ้ต"],
        ["ขาย ทักแชท ราคา", "ขายด่วน 3000 บาท", "พร้อมส่ง"],
        ["ตำรวจยึดงาช้าง", "พิพิธภัณฑ์จัดแสดงงาช้าง"],
    ),
    "id": (
        ["gelang gading gajah", "gading gajah tua", "sisik trenggiling", "cula badak"],
        ["tas kulit", "kursi kayu", "casing hp", "kemeja katun"],
        ["dijual, japri harga", "jual murah 500 ribu", "ready stok, kirim hari ini"],
        ["polisi menyita gading gajah", "museum memamerkan gading"],
    ),
    "fr": (
        [
            "bracelet en ivoire",
            "défense d'ivoire ancienne",
            "écailles de pangolin",
            "corne de rhinocéros",
        ],
        ["sac en cuir", "chaise en bois", "coque de téléphone", "chemise en coton"],
        ["à vendre, prix en MP", "vends 150 €", "dispo, envoi rapide"],
        ["la police a saisi de l'ivoire", "le musée expose l'ivoire"],
    ),
    "pt": (
        [
            "pulseira de marfim",
            "presa de marfim antiga",
            "escamas de pangolim",
            "chifre de rinoceronte",
        ],
        ["bolsa de couro", "cadeira de madeira", "capinha de celular", "camisa de algodão"],
        ["vendo, preço no privado", "à venda R$ 300", "pronta entrega"],
        ["polícia apreendeu marfim", "museu exibe marfim"],
    ),
    "es": (
        [
            "brazalete de marfil",
            "colmillo de marfil antiguo",
            "escamas de pangolín",
            "cuerno de rinoceronte",
        ],
        ["bolso de cuero", "silla de madera", "funda de móvil", "camisa de algodón"],
        ["se vende, precio por privado", "vendo 200 pesos", "envío inmediato"],
        ["la policía decomisó marfil", "el museo exhibe marfil"],
    ),
}
PRODUCT_OF = ["ivory", "ivory", "pangolin_scale", "rhino_horn"]


def listings_frame(langs: list[str] | None = None) -> pd.DataFrame:
    """Labelled listings: product x sale phrase (1), goods x sale phrase and news (0)."""
    rows = []
    for lang in langs or list(LANGS):
        products, goods, sale, news = LANGS[lang]
        for (i, product), phrase in itertools.product(enumerate(products), sale):
            rows.append((lang, f"{product} {phrase}", 1, PRODUCT_OF[i]))
        for item, phrase in itertools.product(goods, sale):
            rows.append((lang, f"{item} {phrase}", 0, ""))
        rows += [(lang, text, 0, "") for text in news]
    frame = pd.DataFrame(rows, columns=["lang", "text", "label", "product"])
    frame["listing_id"] = [f"t{i}" for i in range(len(frame))]
    frame["seller_profile"] = np.where(frame["label"] == 1, "antiques and rare collectibles", "")
    return frame


def write_prepared(root: Path, frame: pd.DataFrame | None = None, seed: int = 0) -> Path:
    """Split ``frame`` 60/20/20 per (lang, label) and save it as a prepared DatasetDict."""
    from datasets import Dataset, DatasetDict

    frame = listings_frame() if frame is None else frame.copy()
    rng = np.random.default_rng(seed)
    frame["split"] = "train"
    for _, index in frame.groupby(["lang", "label"]).groups.items():
        order = rng.permutation(np.asarray(index))
        n = len(order)
        frame.loc[order[: max(1, n // 5)], "split"] = "validation"
        frame.loc[order[max(1, n // 5) : max(2, 2 * n // 5)], "split"] = "test"
    frame["group_id"] = frame["listing_id"]
    frame["text_original"] = frame["text"]
    for column in ("source", "lang_source", "seller_id", "platform", "url", "country"):
        frame[column] = ""
    out = root / "data" / "prepared" / "listings"
    DatasetDict(
        {
            split: Dataset.from_pandas(frame[frame["split"] == split].reset_index(drop=True))
            for split in ("train", "validation", "test")
        }
    ).save_to_disk(str(out))
    return out


def test_builder_covers_every_language_and_split(tmp_path):
    from datasets import load_from_disk

    data = load_from_disk(str(write_prepared(tmp_path)))
    for split in ("train", "validation", "test"):
        langs = set(data[split]["lang"])
        assert langs == set(LANGS), split
        assert set(data[split]["label"]) == {0, 1}, split
