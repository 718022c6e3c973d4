"""Training runs for real on a few dozen examples with the tiny BERT: loss, resume, export, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from safetensors.torch import load_file

from bertsearch.cli.main import cli
from bertsearch.indexer.common.errors import ConfigError
from bertsearch.search.training.evaluate import evaluate_qa_model
from bertsearch.search.training.train import TrainConfig, epoch_batches, lr_factor, train_qa

CITIES = ["Paris", "Rome", "Madrid", "Berlin", "Vienna", "Lisbon", "Dublin", "Prague", "Warsaw", "Athens"]
COUNTRIES = ["France", "Italy", "Spain", "Germany", "Austria", "Portugal", "Ireland", "Czechia", "Poland", "Greece"]


def _write_train(path: Path) -> None:
    paragraphs = []
    for city, country in zip(CITIES, COUNTRIES):
        context = f"{city} is the capital of {country}. It has many old buildings and a river. The weather is mild in spring."
        qas = [
            {"id": f"{city}-1", "question": f"What is the capital of {country}?",
             "answers": [{"text": city, "answer_start": 0}]},
            {"id": f"{city}-2", "question": f"{city} is the capital of which country?",
             "answers": [{"text": country, "answer_start": context.index(country)}]},
            {"id": f"{city}-3", "question": f"What does {city} have?",
             "answers": [{"text": "many old buildings", "answer_start": context.index("many old buildings")}]},
        ]
        paragraphs.append({"context": context, "qas": qas})
    data = {"version": "1.1", "data": [{"title": "Capitals", "paragraphs": paragraphs}]}
    path.write_text(json.dumps(data), encoding="utf-8")


def _config(tmp_path: Path, base: str, **kw) -> TrainConfig:
    tmp_path.mkdir(parents=True, exist_ok=True)
    train = tmp_path / "train.json"
    if not train.exists():
        _write_train(train)
    options = dict(train_path=str(train), out_dir=str(tmp_path / "out"), base_model=base, epochs=6, batch_size=8,
                   lr=2e-3, max_seq_len=64, stride=16, negative_ratio=0.25, threads=1, log_every=5,
                   freeze_word_embeddings=False)
    options.update(kw)
    return TrainConfig(**options)


def test_a_short_run_drives_the_loss_down_and_exports(tiny_bert_path: str, tmp_path: Path) -> None:
    summary = train_qa(_config(tmp_path, tiny_bert_path))
    assert summary["finished"] and summary["steps"] == summary["total_steps"]
    assert summary["last_loss"] < 0.75 * summary["first_loss"]
    out = Path(summary["out_dir"])
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    assert "train.log" in {p.name for p in (tmp_path / "out.run").iterdir()}


def test_resume_continues_exactly_where_it_stopped(tiny_bert_path: str, tmp_path: Path) -> None:
    straight = train_qa(_config(tmp_path / "a", tiny_bert_path, epochs=2))
    first = train_qa(_config(tmp_path / "b", tiny_bert_path, epochs=2, max_steps=3))
    assert not first["finished"] and first["steps"] == 3
    with pytest.raises(ConfigError, match="lr"):
        train_qa(_config(tmp_path / "b", tiny_bert_path, epochs=2, lr=1e-3), resume=True)
    resumed = train_qa(_config(tmp_path / "b", tiny_bert_path, epochs=2), resume=True)
    assert resumed["finished"] and resumed["steps"] == straight["steps"]
    a = load_file(str(Path(straight["out_dir"]) / "model.safetensors"))
    b = load_file(str(Path(resumed["out_dir"]) / "model.safetensors"))
    assert all((a[k].float() - b[k].float()).abs().max() < 1e-2 for k in a)


def test_continue_from_an_exported_model_with_hard_and_perturbed_negatives(tiny_bert_path: str, tmp_path: Path) -> None:
    first = train_qa(_config(tmp_path / "a", tiny_bert_path, epochs=1))
    second = train_qa(_config(tmp_path / "b", tiny_bert_path, epochs=1, init_from=first["out_dir"],
                              hard_negative_ratio=1.0))
    assert second["finished"] and second["questions"] > first["questions"]
    third = train_qa(_config(tmp_path / "c", tiny_bert_path, epochs=1, init_from=first["out_dir"],
                             perturbed_negative_ratio=1.0, perturbed_weights="0,1,0,1,2"))
    assert third["finished"] and third["questions"] > first["questions"]
    # the card tells the whole lineage: this run's near-miss negatives and the run it continued
    card = (Path(third["out_dir"]) / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "--perturbed-negatives 1.0" in card and "Near-miss negatives: 1.0 per question" in card
    # with the kinds it was given and their weights, and no other
    assert "antonym (1); its verb negated (1); a name or number swapped for another one of its paragraph (2)" in card
    assert "--perturbed-weights 0,1,0,1,2" in card and "lacks" not in card and "second" not in card
    assert "### The run it continued" in card and f"--out {first['out_dir']}" in card
    # facts noted in an earlier run's record (where it ran, how it was chosen) stay in the lineage
    meta_file = Path(first["out_dir"]) / "bertsearch_qa.json"
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    meta_file.write_text(json.dumps({**meta, "notes": ["Chosen among three seeds."]}), encoding="utf-8")
    fourth = train_qa(_config(tmp_path / "d", tiny_bert_path, epochs=1, init_from=first["out_dir"]))
    card = (Path(fourth["out_dir"]) / "MODEL_CARD.md").read_text(encoding="utf-8")
    earlier = card[card.index("### The run it continued"):]
    assert "- Chosen among three seeds." in earlier and f"- Machine: {meta['machine']}." in earlier


def test_resume_without_a_checkpoint_is_a_config_error(tiny_bert_path: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nothing to resume"):
        train_qa(_config(tmp_path, tiny_bert_path), resume=True)


def test_device_setting(tiny_bert_path: str, tmp_path: Path) -> None:
    import torch

    from bertsearch.search.training.train import resolve_device

    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("tpu", "gpu", "cuda:x"):
        with pytest.raises(ConfigError, match="device must be"):
            resolve_device(bad)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            train_qa(_config(tmp_path, tiny_bert_path, device="cuda"))
        assert not (tmp_path / "out.run").exists()  # refused before anything was written
    summary = train_qa(_config(tmp_path / "cpu", tiny_bert_path, epochs=1, device="cpu"))
    assert summary["finished"] and summary["device"] == "cpu"


def test_schedule_and_batches() -> None:
    assert lr_factor(0.0, 0.1) == pytest.approx(0.01)
    assert lr_factor(0.05, 0.1) == pytest.approx(0.5)
    assert lr_factor(0.55, 0.1) == pytest.approx(0.5)
    assert lr_factor(1.0, 0.1) == 0.0
    import numpy as np

    lengths = np.arange(100) % 37
    batches = epoch_batches(lengths, 8, seed=1, epoch=0)
    assert sorted(np.concatenate(batches).tolist()) == list(range(100))
    again = epoch_batches(lengths, 8, seed=1, epoch=0)
    assert all((x == y).all() for x, y in zip(batches, again))


def test_the_thread_tuner_recovers_two_threads_after_the_cpu_is_free_again() -> None:
    """Two threads cost 10x while another job shares the CPU, then half of one thread's cost: one
    trial after the job ends is enough to go back to two (a stale average kept one thread for
    ten minutes of a real run)."""
    import torch

    from bertsearch.search.training.train import _ThreadTuner

    before = torch.get_num_threads()
    try:
        tuner = _ThreadTuner([1, 2], period=60, trial=8)
        busy = {1: 2.0, 2: 20.0}
        free = {1: 2.0, 2: 1.0}

        def run(costs: dict[int, float], steps: int) -> list[int]:
            chosen = []
            for _ in range(steps):
                chosen.append(tuner.choose())
                tuner.record(costs[tuner.current] * 1000, 1000)
            return chosen

        # a trial of the other count in the last 8 steps of every 60
        assert run(busy, 180)[120:172] == [1] * 52  # while the CPU is shared, one thread is cheaper
        assert run(free, 60) == [1] * 52 + [2] * 8  # the trial of two threads, measured afresh
        assert run(free, 52) == [2] * 52  # and two it stays
    finally:
        torch.set_num_threads(before)


def test_train_qa_and_eval_qa_commands(tiny_bert_path: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    train = tmp_path / "train.json"
    _write_train(train)
    out = tmp_path / "model"
    runner = CliRunner()
    result = runner.invoke(cli, [
        "train-qa", "--train", str(train), "--out", str(out), "--base-model", tiny_bert_path, "--epochs", "1",
        "--batch-size", "8", "--max-seq-len", "64", "--stride", "16", "--threads", "1", "--quiet", "--json",
        "--eval", str(train), "--eval-limit", "10",
    ])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["finished"] and summary["eval"]["total"] == 10
    result = runner.invoke(cli, ["eval-qa", "--model", str(out), "--data", str(train), "--limit", "6", "--quiet",
                                 "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output.strip().splitlines()[-1])
    assert scores["total"] == 6 and 0.0 <= scores["f1"] <= 100.0
    capsys.readouterr()
    assert evaluate_qa_model(out, train, limit=6, show_progress=True)["f1"] == scores["f1"]
    assert "reading" in capsys.readouterr().err  # the progress bar a terminal shows
    result = runner.invoke(cli, ["eval-qa", "--model", str(out), "--data", str(train), "--limit", "6", "--sweep",
                                 "--record", "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.output.strip().splitlines()[-1])
    assert [row["null_threshold"] for row in scores["threshold_sweep"]][:2] == [-6.0, -4.0]
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "| train.json (first 6) | 6 |" in card and "bertsearch train-qa" in card
    assert "trade-off" not in card  # no unanswerable questions, no abstention to trade
    v2 = json.loads(train.read_text(encoding="utf-8"))
    for paragraph in v2["data"][0]["paragraphs"]:
        paragraph["qas"].append({"id": paragraph["qas"][0]["id"] + "-x", "question": "Who painted it?",
                                 "answers": [], "is_impossible": True})
    (tmp_path / "v2.json").write_text(json.dumps(v2), encoding="utf-8")
    result = runner.invoke(cli, ["eval-qa", "--model", str(out), "--data", str(tmp_path / "v2.json"), "--sweep",
                                 "--record", "--json"])
    assert result.exit_code == 0, result.output
    card = (out / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "| v2.json | 40 |" in card and "Null threshold trade-off on v2.json" in card
    assert card.count("\n| -6.0 |") == 1
    result = runner.invoke(cli, ["eval-qa", "--model", str(tmp_path / "none"), "--data", str(train)])
    assert result.exit_code == 1 and "Error:" in result.output
    result = runner.invoke(cli, ["train-qa", "--train", str(train), "--out", str(tmp_path / "x"), "--device", "tpu"])
    assert result.exit_code == 1 and "Error: device must be auto, cpu or cuda" in result.output
    result = runner.invoke(cli, ["train-qa", "--train", str(train), "--out", str(tmp_path / "x"), "--base-model",
                                 tiny_bert_path, "--freeze-layers", "9"])
    assert result.exit_code == 1 and "Error: --freeze-layers must be 0-2" in result.output
    assert not (tmp_path / "x").exists()


def test_frozen_layers_stay_as_they_were(tiny_bert_path: str, tmp_path: Path) -> None:
    import torch
    from transformers import BertModel

    train = tmp_path / "train.json"
    _write_train(train)
    config = TrainConfig(train_path=str(train), out_dir=str(tmp_path / "m"), base_model=tiny_bert_path, epochs=1,
                         batch_size=8, max_seq_len=64, stride=16, threads=1, lr=1e-3, freeze_layers=1)
    train_qa(config)
    trained = torch.load(config.resolved_run_dir() / "checkpoint.pt", weights_only=False)["model"]  # float32
    base = BertModel.from_pretrained(tiny_bert_path).state_dict()
    for layer, frozen in ((0, True), (1, False)):
        keys = [k for k in base if k.startswith(f"encoder.layer.{layer}.")]
        assert all(torch.equal(trained["bert." + k], base[k]) for k in keys) == frozen, layer


def test_commands_have_help() -> None:
    for name in ("train-qa", "eval-qa"):
        result = CliRunner().invoke(cli, [name, "--help"])
        assert result.exit_code == 0, result.output


def test_the_shared_norm_loss_is_one_softmax_over_the_context_of_a_groups_windows() -> None:
    import torch

    from bertsearch.search.training.shared_norm import shared_norm_loss

    # two windows of one group (the answer in the first, at 2..3) and a window of a group without an answer
    start = torch.tensor([[5.0, 0.0, 2.0, 1.0, 0.0], [9.0, 0.0, 1.0, 3.0, 0.0], [0.0, 4.0, 4.0, 4.0, 4.0]])
    end = torch.tensor([[5.0, 0.0, 0.0, 2.0, 0.0], [9.0, 0.0, 0.0, 0.0, 1.0], [0.0, 4.0, 4.0, 4.0, 4.0]])
    context = torch.tensor([[False, False, True, True, True]] * 3)  # [CLS] and the question are left out
    loss = shared_norm_loss(start, end, torch.tensor([2, 0, 0]), torch.tensor([3, 0, 0]), context, torch.tensor([7, 7, 8]))
    lse = lambda xs: math.log(sum(math.exp(x) for x in xs))  # noqa: E731
    start_loss = lse([2, 1, 0, 1, 3, 0]) - 2
    end_loss = lse([0, 2, 0, 0, 0, 1]) - 2
    assert float(loss) == pytest.approx((start_loss + end_loss) / 2, rel=1e-5)
    # the other window's passage outscoring the answer raises the loss; the no-answer position does not count
    higher = start.clone()
    higher[1, 3] = 6.0
    assert float(shared_norm_loss(higher, end, torch.tensor([2, 0, 0]), torch.tensor([3, 0, 0]), context,
                                  torch.tensor([7, 7, 8]))) > float(loss)
    no_answer = start.clone()
    no_answer[:, 0] = 50.0
    assert float(shared_norm_loss(no_answer, end, torch.tensor([2, 0, 0]), torch.tensor([3, 0, 0]), context,
                                  torch.tensor([7, 7, 8]))) == pytest.approx(float(loss))
    # a batch without an answer anywhere adds nothing
    assert float(shared_norm_loss(start, end, torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long),
                                  context, torch.tensor([7, 7, 8]))) == 0.0


def test_group_batches_keep_each_group_whole() -> None:
    import numpy as np

    from bertsearch.search.training.shared_norm import group_batches

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(60), rng.integers(1, 6, size=60))
    groups = np.append(groups, [99] * 11)  # a group longer than a batch
    lengths = rng.integers(10, 200, size=len(groups))
    batches = group_batches(groups, lengths, 8, seed=3, epoch=0)
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(groups)))  # every window once
    assert all(len(b) <= 8 for b in batches)
    where = {}
    for n, b in enumerate(batches):
        for g in set(groups[b].tolist()):
            where.setdefault(g, set()).add(n)
    assert all(len(v) == 1 for g, v in where.items() if g != 99) and len(where[99]) == 2
    again = group_batches(groups, lengths, 8, seed=3, epoch=0)
    assert all((x == y).all() for x, y in zip(batches, again))
    assert any(len(x) != len(y) or (x != y).any() for x, y in zip(batches, group_batches(groups, lengths, 8, 3, 1)))


def test_a_run_with_shared_normalisation_trains_and_records_it(tiny_bert_path: str, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # each question is asked of its own paragraph and of the next city's (one group)
    train = tmp_path / "train.json"
    paragraphs = []
    for i, (city, country) in enumerate(zip(CITIES, COUNTRIES)):
        context = f"{city} is the capital of {country}. It has many old buildings and a river."
        other = CITIES[(i + 1) % len(CITIES)], COUNTRIES[(i + 1) % len(CITIES)]
        paragraphs.append({"context": context, "qas": [
            {"id": f"{city}-1", "group": city, "question": f"What is the capital of {country}?",
             "answers": [{"text": city, "answer_start": 0}]}]})
        paragraphs.append({"context": f"{other[0]} is the capital of {other[1]}. It has a port.", "qas": [
            {"id": f"{city}-2", "group": city, "question": f"What is the capital of {country}?", "answers": [],
             "is_impossible": True}]})
    train.write_text(json.dumps({"version": "1.1", "data": [{"title": "Capitals", "paragraphs": paragraphs}]}))
    from bertsearch.search.training import shared_norm

    seen = []  # what the loss was given: each question's two passages in one batch, one holding the answer

    def spy(start, end, starts, ends, context, groups):
        for g in groups.unique():
            rows = groups == g
            seen.append((int(rows.sum()), int((starts[rows] > 0).sum())))
        return real(start, end, starts, ends, context, groups)

    real = shared_norm.shared_norm_loss
    monkeypatch.setattr(shared_norm, "shared_norm_loss", spy)
    summary = train_qa(_config(tmp_path, tiny_bert_path, train_path=str(train), shared_norm=1.0, negative_ratio=0.0,
                               epochs=8))
    assert summary["finished"] and summary["last_loss"] < 0.75 * summary["first_loss"]
    assert seen and all(rows == 2 and gold == 1 for rows, gold in seen)
    assert summary["windows_seen"] == 8 * 20
    card = (Path(summary["out_dir"]) / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "Shared normalisation (weight 1.0)" in card and "--shared-norm 1.0" in card
    with pytest.raises(ConfigError, match="shared_norm"):  # a run cannot change it on resume
        train_qa(_config(tmp_path, tiny_bert_path, train_path=str(train), shared_norm=0.5, negative_ratio=0.0,
                         epochs=8), resume=True)
