"""``piguard entities``: the taxonomy, so users can see every entity id, its class and sensitivity."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from piguard import taxonomy


def entities(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    detectable: bool = typer.Option(False, "--detectable", help="Only entities a detector can find in data."),
) -> None:
    """List the entity taxonomy (PIPL Art. 28 sensitivity, GB/T 35273-2020 classes, fideslang mapping)."""
    rows = [e for e in taxonomy.entities().values() if e.detectable or not detectable]
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "id": e.id,
                        "zh": e.zh,
                        "en": e.en,
                        "class": e.pi_class,
                        "personal": e.personal,
                        "sensitive": e.sensitive,
                        "identifier": e.identifier,
                        "fideslang": e.fideslang,
                        "detectable": e.detectable,
                        "basis": e.basis,
                    }
                    for e in rows
                ],
                ensure_ascii=False,
                indent=1,
            )
        )
        return
    t = Table(title="piguard entity taxonomy")
    for col in ("id", "中文", "class", "sensitive", "identifier", "detectable", "fideslang"):
        t.add_column(col)
    for e in rows:
        t.add_row(
            e.id, e.zh, e.pi_class, "yes" if e.sensitive else "no", e.identifier,
            "yes" if e.detectable else "declared", e.fideslang,
        )  # fmt: skip
    Console().print(t)


def register(app: typer.Typer) -> None:
    app.command("entities")(entities)
