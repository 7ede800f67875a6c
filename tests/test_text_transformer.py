"""Fine-tuning a tiny Hugging Face classifier that the test builds and saves locally."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from test_text_data import listings_frame


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A 2-layer BERT with a word-piece tokenizer trained on the test listings."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=400, special_tokens=specials)
    tokenizer.train_from_iterator(listings_frame()["text"].tolist(), trainer)
    from tokenizers.processors import TemplateProcessing

    tokenizer.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    config = BertConfig(
        vocab_size=fast.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=2,
        # Without dropout two full-batch steps see the same function: the loss must fall.
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    import torch

    torch.manual_seed(0)  # a fixed initialisation, so the two steps below are repeatable
    BertForSequenceClassification(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def test_two_steps_lower_the_loss_and_reload_identically(tiny_checkpoint, tmp_path):
    from wildml.text.transformer import TransformerComponent

    frame = listings_frame(["en", "fr"])
    component = TransformerComponent(
        model=str(tiny_checkpoint),
        max_steps=2,
        batch_size=len(frame),  # one full batch twice: the loss must fall
        learning_rate=1e-4,
        max_length=32,
        device="cpu",
    ).fit(frame, frame["label"].to_numpy())
    assert len(component.loss_history_) == 2
    assert component.loss_history_[1] < component.loss_history_[0]

    component.save(tmp_path, "component-transformer")
    assert (tmp_path / "component-transformer" / "model.safetensors").is_file()
    again = TransformerComponent.load(tmp_path, "component-transformer")
    probe = pd.DataFrame({"text": ["vends bracelet en ivoire", "", "x" * 100_000]})
    np.testing.assert_allclose(
        again.decision_function(probe), component.decision_function(probe), rtol=0, atol=1e-6
    )


def test_transformer_family_runs_the_stage(tiny_checkpoint, tmp_path):
    import yaml

    from test_text_data import write_prepared
    from wildml.text import TextModel
    from wildml.text.train import run

    write_prepared(tmp_path, listings_frame(["en", "fr"]))
    section = {
        "family": "transformer",
        "cv_folds": 2,
        "mlflow": False,
        "baseline": False,
        "transformer": {"model": str(tiny_checkpoint), "max_steps": 2, "max_length": 32},
    }
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"base": {"seed": 1}, "train_text": section}))
    report = run(params)
    assert report["reload_max_abs_diff"] < 1e-6
    model = TextModel.load(tmp_path / "models" / "text")
    assert model.predict_proba(pd.DataFrame({"text": ["ivoire"]})).shape == (1,)
