"""``train-qa`` and ``eval-qa``: fine-tune and measure the extractive QA head."""

from __future__ import annotations

from pathlib import Path

import click

from bertsearch.cli.commands._common import echo_json, make_settings, show_progress

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command("train-qa")
@click.option("--train", "train_path", type=_FILE, required=True, help="SQuAD-format training file (.json or .json.gz).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder the trained model is exported to.")
@click.option("--eval", "eval_path", type=_FILE, default=None, help="SQuAD-format file evaluated at the end.")
@click.option("--eval-limit", type=int, default=2000, show_default=True, help="Questions evaluated at the end (0: all).")
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Checkpoints and log (default: <out>.run).")
@click.option("--base-model", default=None,
              help="Encoder folder or name (multilingual-e5-small, all-mpnet-base-v2) to start from "
                   "(default: packaged all-MiniLM-L6-v2).")
@click.option("--freeze-layers", type=click.IntRange(0), default=0, show_default=True,
              help="Keep the encoder's first N layers fixed (faster; a named base's export leaves them out).")
@click.option("--lora-rank", type=click.IntRange(0), default=0, show_default=True,
              help="Keep the encoder's weights fixed and train low-rank adapters of this rank beside them "
                   "(on a named base the export then holds only them, a few MB; 0: train the weights).")
@click.option("--limit", type=int, default=None, help="Use only the first N training questions.")
@click.option("--epochs", type=float, default=1.0, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True, help="Windows per step.")
@click.option("--lr", type=float, default=1.5e-4, show_default=True)
@click.option("--warmup", "warmup_ratio", type=float, default=0.06, show_default=True)
@click.option("--max-seq-len", type=int, default=256, show_default=True)
@click.option("--stride", type=int, default=96, show_default=True, help="Tokens shared by consecutive windows.")
@click.option("--negatives", "negative_ratio", type=float, default=0.25, show_default=True,
              help="Unanswerable pairs (other paragraph, same article) per question.")
@click.option("--hard-negatives", "hard_negative_ratio", type=float, default=0.0, show_default=True,
              help="Unanswerable pairs (own paragraph minus the answer's sentences) per question.")
@click.option("--perturbed-negatives", "perturbed_negative_ratio", type=float, default=0.0, show_default=True,
              help="Near-miss unanswerable questions (entity swapped, antonym, word swapped, negation, "
                   "a name swapped for another of the paragraph, 'second' before a superlative, a word "
                   "swapped for another of the paragraph, two of its names or words exchanged) per question.")
@click.option("--perturbed-weights", default="3,1,0,1", show_default=True,
              help="Relative frequency of the near-miss kinds: entity swap, antonym, word swap, negation, "
                   "role swap, ordinal, reword, exchange (missing ones 0).")
@click.option("--init-from", default=None, help="Continue from this exported QA model instead of the base encoder.")
@click.option("--shared-norm", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Weight of the shared-normalisation loss: the passages one question is asked of (a group) "
                   "are batched together and their spans compete in one softmax (0: none).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--precision", type=click.Choice(["auto", "bf16", "fp32"]), default="auto", show_default=True)
@click.option("--device", default="auto", show_default=True,
              help="cpu, cuda (or cuda:N), or auto: a CUDA GPU when torch sees one, else the CPU.")
@click.option("--threads", type=int, default=None, help="Torch threads (default: all cores).")
@click.option("--checkpoint-minutes", type=float, default=10.0, show_default=True)
@click.option("--time-budget", "time_budget_minutes", type=float, default=None,
              help="Minutes of training to fit the run into (the schedule follows time or steps, whichever is further).")
@click.option("--max-steps", type=int, default=None, help="Stop after N steps (resume later).")
@click.option("--resume", is_flag=True, help="Continue from the run folder's checkpoint.")
@click.option("--quiet", is_flag=True, help="Only the final summary (the log file is still written).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def train_qa_command(resume: bool, quiet: bool, as_json: bool, eval_limit: int, **options) -> None:
    """Fine-tune an extractive QA head (BERT or MPNet) on SQuAD-format data."""
    from bertsearch.search.training.train import TrainConfig, train_qa

    config = TrainConfig(**{k: (str(v) if isinstance(v, Path) else v) for k, v in options.items()},
                         eval_limit=eval_limit or None, cache_dir=str(make_settings().cache_dir))
    summary = train_qa(config, resume=resume, echo=None if quiet else click.echo)
    if as_json:
        echo_json(summary)
    else:
        click.echo(f"steps {summary['steps']}/{summary['total_steps']}, model: {summary.get('out_dir', '(not finished)')}")
        if "eval" in summary:
            click.echo(" ".join(f"{k}={v}" for k, v in summary["eval"].items()))


@click.command("eval-qa")
@click.option("--model", "model_path", default=None, help="QA model folder (default: the shipped head).")
@click.option("--data", "data_path", type=_FILE, required=True, help="SQuAD-format file (v1.1 or v2.0 dev).")
@click.option("--limit", type=int, default=None, help="Evaluate only the first N questions.")
@click.option("--null-threshold", type=float, default=0.0, show_default=True,
              help="Abstain when the no-answer score beats the best span by more than this (log space).")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--precision", type=click.Choice(["auto", "bf16", "fp32", "int8"]), default="auto", show_default=True,
              help="auto: bf16 with native bf16, else int8 when ONNX Runtime is installed, else fp32.")
@click.option("--predictions", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the predictions ({id: text}) to this JSON file.")
@click.option("--score", "score_path", type=_FILE, default=None,
              help="Score this predictions JSON ({id: text}) instead of running a model (like the official script).")
@click.option("--sweep", is_flag=True, help="Also score a range of null thresholds (no extra model runs).")
@click.option("--record", is_flag=True, help="Store the scores in the model folder and its MODEL_CARD.md.")
@click.option("--large-reader", type=click.Path(exists=True, file_okay=False), default=None,
              help="A second QA model folder read with --model as one (as `ask --large-reader` reads; here "
                   "both read every context).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON.")
def eval_qa_command(model_path: str | None, data_path: Path, limit: int | None, null_threshold: float,
                    batch_size: int, precision: str, predictions: Path | None, score_path: Path | None,
                    sweep: bool, record: bool, large_reader: str | None, quiet: bool, as_json: bool) -> None:
    """Official SQuAD EM/F1 of a QA model (HasAns/NoAns and abstain rate on v2 data)."""
    from bertsearch.search.training.evaluate import evaluate_qa_model, score_predictions

    if score_path is not None:
        scores = score_predictions(data_path, score_path)
    else:
        scores = evaluate_qa_model(model_path, data_path, limit=limit, null_threshold=null_threshold,
                                   batch_size=batch_size, precision=precision, predictions_path=predictions,
                                   sweep=sweep, record=record, show_progress=show_progress(quiet),
                                   cache_dir=make_settings().cache_dir, large_reader=large_reader)
    if as_json:
        echo_json(scores)
    else:
        for key, value in scores.items():
            if key != "threshold_sweep":
                click.echo(f"{key}: {value}")
        for row in scores.get("threshold_sweep", []):
            click.echo("  " + " ".join(f"{k}={v}" for k, v in row.items()))


COMMANDS = [train_qa_command, eval_qa_command]
