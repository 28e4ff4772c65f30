import csv
import json
import os

import numpy as np
import pytest
import torch

from hcsmoe.checkpoint import load_reduced
from hcsmoe.data import encode, load_corpus, multiple_choice_items
from hcsmoe.evaluation import multiple_choice_accuracy
from hcsmoe.toy import build_dense, sparse_upcycle, train_lm


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


@pytest.mark.parametrize("family", ["mixtral", "qwen3_moe"])
def test_noiseless_upcycling_keeps_the_dense_function(family, ids):
    """Every expert a copy of the dense FFN + renormalised top-k weights => the MoE equals the dense model."""
    dense = build_dense(family, seed=0).eval()
    moe = sparse_upcycle(dense, experts=8, top_k=2, noise=0.0).eval()
    torch.testing.assert_close(moe(input_ids=ids).logits, dense(input_ids=ids).logits, rtol=1e-4, atol=1e-4)


def test_short_training_learns(corpus):
    train_text, test_text, _ = corpus
    model = build_dense("mixtral", seed=0, hidden=32, ffn=64, layers=1)
    losses = train_lm(model, encode(train_text[:200_000]), steps=60, batch_size=8, seq_len=64, lr=1e-2, seed=0,
                      progress=False)
    assert np.mean(losses[:3]) > 5.0          # ~ln 256 at initialisation
    assert np.mean(losses[-5:]) < 3.2         # well below the uniform guess; below the ~3.0-nat byte unigram level is not needed


def test_corpus_split_and_items(corpus):
    train_text, test_text, source = corpus
    assert len(train_text) > 10 * len(test_text) > 0
    assert test_text[:200] not in train_text
    items = multiple_choice_items(test_text, 20, np.random.default_rng(0))
    assert len(items) == 20
    for it in items:
        assert len(it["choices"]) == 4 and len(set(it["choices"])) == 4
        assert it["context"] + it["choices"][it["label"]] in test_text


def test_multiple_choice_scoring_prefers_the_likely_choice():
    class Biased(torch.nn.Module):   # a "model" that always predicts byte 'a'
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, input_ids, **kw):
            logits = torch.zeros(*input_ids.shape, 256)
            logits[..., ord("a")] = 10.0
            return type("O", (), {"logits": logits})()

    items = [{"context": "xyz ", "choices": ["bbbb", "aaaa", "cc"], "label": 1}]
    assert multiple_choice_accuracy(Biased(), items) == {"acc": 1.0, "acc_norm": 1.0}
    # acc and acc_norm disagree: "aaab" has the lower total log-likelihood (3 x log p(a) + log p(b) < log p(b)) but
    # the higher per-byte one, so acc picks "b" and acc_norm (lm-eval's length normalisation) picks "aaab"
    items = [{"context": "xyz ", "choices": ["b", "aaab"], "label": 1}]
    assert multiple_choice_accuracy(Biased(), items) == {"acc": 0.0, "acc_norm": 1.0}
    items = [{"context": "xyz ", "choices": ["b", "aaab"], "label": 0}]
    assert multiple_choice_accuracy(Biased(), items) == {"acc": 1.0, "acc_norm": 0.0}


def test_train_py_end_to_end_and_resume(tmp_path):
    import train

    args = ["--config", "smoke", "--out-dir", str(tmp_path), "--dense-steps", "3", "--moe-steps", "3",
            "--eval-blocks", "2", "--mc-items", "3", "--methods", "hc-smoe", "o-prune", "random"]
    table = train.main(args)
    assert [t["method"] for t in table] == ["original", "hc-smoe", "o-prune", "random"]
    (run,) = os.listdir(tmp_path)
    run = tmp_path / run
    for f in ["config.json", "metrics.csv", "results.md", "methods.png", "training_loss.png"]:
        assert (run / f).exists(), f
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    assert len(rows) == 4
    assert int(rows[1]["expert_params"]) * 2 == int(rows[0]["expert_params"])
    merged = load_reduced(str(run / "merged-hc-smoe-seed0"))
    assert merged.model.layers[0].mlp.experts.num_experts == 4
    train.main(args + ["--resume", str(run)])          # everything done: reuses the model, adds no rows
    assert len(list(csv.DictReader(open(run / "metrics.csv")))) == 4
    other = tmp_path / "k6"
    table6 = train.main(args + ["--out-dir", str(other), "--init-from", str(run), "--target-experts", "6"])
    assert table6[0]["ppl"][0] == pytest.approx(table[0]["ppl"][0])     # the same trained model, not retrained
    assert table6[1]["expert_params"] * 8 == table[0]["expert_params"] * 6


def test_merge_py_on_a_saved_model(tmp_path):
    import merge
    from hcsmoe.toy import build_tiny

    build_tiny("olmoe", seed=0).save_pretrained(tmp_path / "src")
    rep = merge.main(["--model", str(tmp_path / "src"), "--tokenizer", "bytes", "--experts", "3", "--out",
                      str(tmp_path / "out"), "--calib-blocks", "2", "--calib-seq-len", "32", "--device", "cpu",
                      "--dtype", "float32", "--linkage", "ward"])
    assert rep["expert_params_after"] * 8 == rep["expert_params_before"] * 3
    model = load_reduced(str(tmp_path / "out"))
    assert json.load(open(tmp_path / "out" / "hcsmoe.json"))["layers"]["0"]["num_experts"] == 3
    assert torch.isfinite(model(input_ids=torch.randint(0, 256, (1, 16))).logits).all()


@pytest.mark.parametrize("k", [0, 9])
def test_merge_py_rejects_a_bad_k_before_calibrating(tmp_path, k, monkeypatch):
    import merge
    from hcsmoe.toy import build_tiny

    build_tiny("mixtral", seed=0).save_pretrained(tmp_path / "src")
    monkeypatch.setattr(merge, "collect_stats", lambda *a, **kw: pytest.fail("calibrated before checking k"))
    with pytest.raises(ValueError, match=f"num_experts k={k} must satisfy 1 <= k <= E=8"):
        merge.main(["--model", str(tmp_path / "src"), "--tokenizer", "bytes", "--experts", str(k), "--out",
                    str(tmp_path / "out"), "--device", "cpu", "--dtype", "float32"])


def test_merge_py_rejects_an_unsupported_architecture(tmp_path):
    import merge
    from transformers import LlamaConfig, LlamaForCausalLM

    LlamaForCausalLM(LlamaConfig(vocab_size=256, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=2)).save_pretrained(tmp_path / "llama")
    from hcsmoe.families import UnsupportedArchitecture
    with pytest.raises(UnsupportedArchitecture, match="unsupported architecture 'llama'"):
        merge.main(["--model", str(tmp_path / "llama"), "--tokenizer", "bytes", "--experts", "2", "--out",
                    str(tmp_path / "out"), "--device", "cpu", "--dtype", "float32"])


@pytest.mark.parametrize("args,match", [(["--target-experts", "9"], "must satisfy 1 <= k <= --experts 8"),
                                        (["--target-experts", "0"], "must satisfy"),
                                        (["--methods", "hc-smoe:hirarchical"], "hirarchical")])
def test_train_py_rejects_bad_input_before_training(tmp_path, monkeypatch, args, match):
    import train

    monkeypatch.setattr(train, "toy_model", lambda *a, **kw: pytest.fail("trained before checking the input"))
    with pytest.raises(SystemExit, match=match):
        train.main(["--config", "smoke", "--out-dir", str(tmp_path), *args])


def test_method_specs_parse_and_reject_unknown_options():
    import train

    cfg = train.parse_args([])
    rc = train.method_config("hc-smoe:ward:fix-dom:router-logits", cfg, seed=3)
    assert (rc.method, rc.linkage, rc.merge, rc.feature, rc.seed) == ("hc-smoe", "ward", "fix-dom", "router-logits", 3)
    assert train.method_config("hc-smoe:kmeans", cfg, 0).clustering == "kmeans"
    with pytest.raises(SystemExit, match="hirarchical"):          # the official code's typo is an error here
        train.method_config("hc-smoe:hirarchical", cfg, 0)
    with pytest.raises(SystemExit, match="unknown method"):
        train.method_config("z-prune", cfg, 0)
