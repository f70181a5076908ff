"""``piguard model train|evaluate|show``: adapt the name/address model to your own labelled text.

``piguard scan --model DIR`` then uses it in place of the shipped PERSON/ADDRESS detectors.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from piguard.adapt.labelled import LabelledDataError, read_labelled

model_app = typer.Typer(
    help="Fine-tune the name/address model on your labelled text; score and inspect adapted models.",
    no_args_is_help=True,
)


def _fail(msg: str) -> typer.Exit:
    typer.echo(f"piguard model: {msg}", err=True)
    return typer.Exit(2)


def _read(paths: list[Path]) -> list:
    try:
        report = read_labelled(paths)
    except LabelledDataError as exc:
        raise _fail(str(exc)) from None
    for problem in report.problems[:20]:
        typer.echo(f"skipped {problem}", err=True)
    if len(report.problems) > 20:
        typer.echo(f"... and {len(report.problems) - 20} more skipped lines", err=True)
    return report.examples


def _scores_table(title: str, scores: dict[str, dict[str, float]]) -> Table:
    table = Table(title=title)
    for col in ("label", "precision", "recall", "F1", "gold", "predicted"):
        table.add_column(col, justify="left" if col == "label" else "right")
    for label, s in scores.items():
        table.add_row(
            label,
            f"{s['precision']:.3f}",
            f"{s['recall']:.3f}",
            f"{s['f1']:.3f}",
            str(s["gold"]),
            str(s["predicted"]),
        )
    return table


@model_app.command("train")
def train(
    data: list[Path] = typer.Argument(
        ...,
        help="Labelled files: JSON lines (piguard, CLUENER or entity-list layout) or BIO/BMES columns.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Directory to write the model to."),
    epochs: int = typer.Option(8, "--epochs", min=1),
    members: int = typer.Option(
        1, "--members", min=1, help="Ensemble members (trained side by side, one per core)."
    ),
    holdout: float = typer.Option(0.1, "--holdout", min=0.0, max=0.9, help="Share kept aside and scored."),
    seed: int = typer.Option(0, "--seed"),
    keep_base: float | None = typer.Option(
        None,
        "--keep-base",
        min=0.0,
        help="Weight of the loss that keeps LAC's own reading while learning (0: off, trains faster).",
    ),
    also_read: list[Path] = typer.Option(
        [],
        "--also-read",
        help="Another labelled corpus (a news NER corpus, say) to learn reading from, through an output "
        "layer of its own: its labels are never taken as yours. Repeatable. Best measured with it: "
        "--keep-base 0 --members 4 (docs/detect-names-addresses.md).",
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing model directory."),
) -> None:
    """Fine-tune LAC on labelled examples. Needs PyTorch: pip install 'piguard[adapt]'."""
    from piguard.adapt.train import TrainingUnavailable, TrainSettings, train_model

    examples = _read(data)
    auxiliary = _read(also_read) if also_read else []
    console = Console(stderr=True)
    settings = TrainSettings(epochs=epochs, members=members, holdout=holdout, seed=seed)
    if keep_base is not None:
        settings.keep_base = keep_base
    try:
        report = train_model(
            examples,
            out,
            settings=settings,
            sources=[str(p) for p in data] + [f"{p} (read through its own output layer)" for p in also_read],
            overwrite=overwrite,
            progress=lambda msg: console.print(msg, highlight=False),
            auxiliary=auxiliary,
        )
    except (TrainingUnavailable, FileExistsError, ValueError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(
        f"wrote {report.directory}: {', '.join(report.labels)}; {report.examples_trained} examples trained, "
        f"{report.examples_held_out} held out, {report.seconds:.0f} s"
    )
    if report.held_out_scores:
        Console().print(_scores_table("held-out scores", report.held_out_scores))


@model_app.command("evaluate")
def evaluate(
    model: Path = typer.Argument(..., help="Model directory."),
    data: list[Path] = typer.Argument(..., help="Labelled files to score against (any layout train reads)."),
    as_json: bool = typer.Option(False, "--json", help="Print the scores as JSON."),
) -> None:
    """Strict span scores of a model on labelled examples (label, start and end must all match)."""
    from piguard.adapt.train import score
    from piguard.detect.adapted import AdaptedModel, ModelError

    examples = _read(data)
    try:
        scores = score(AdaptedModel(model), examples)
    except ModelError as exc:
        raise _fail(str(exc)) from None
    if as_json:
        typer.echo(json.dumps(scores, ensure_ascii=False, indent=1))
    else:
        Console().print(_scores_table(f"{model} on {len(examples)} examples", scores))


@model_app.command("show")
def show(model: Path = typer.Argument(..., help="Model directory.")) -> None:
    """What a model is: its labels, the entities it reports, what it was trained on, its held-out scores."""
    from piguard.detect.adapted import AdaptedModel, ModelError

    try:
        m = AdaptedModel(model)
    except ModelError as exc:
        raise _fail(str(exc)) from None
    info = {
        "name": m.manifest.get("name"),
        "created": m.manifest.get("created"),
        "reports": list(m.entities),
        "labels": list(m.labels),
        "members": len(m.manifest.get("members", [])),
        "base": m.manifest.get("base"),
        "training": m.manifest.get("training"),
        "held_out_scores": m.manifest.get("held_out_scores"),
    }
    typer.echo(json.dumps(info, ensure_ascii=False, indent=1))


def register(app: typer.Typer) -> None:
    app.add_typer(model_app, name="model")
