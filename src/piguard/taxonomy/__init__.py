"""The entity taxonomy: which kinds of personal information exist, and how sensitive each is.

The data lives in ``entities.yaml`` beside this module so a compliance officer can read and extend it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

import yaml

Identifier = Literal["direct", "quasi", "none"]


@dataclass(frozen=True, slots=True)
class EntityType:
    id: str
    zh: str
    en: str
    pi_class: str
    personal: bool
    sensitive: bool
    identifier: Identifier
    fideslang: str
    detectable: bool
    basis: str


class UnknownEntity(KeyError):
    """An entity id that the taxonomy does not define."""

    def __init__(self, entity_id: str) -> None:
        super().__init__(entity_id)
        self.entity_id = entity_id

    def __str__(self) -> str:
        return f"unknown entity {self.entity_id!r}; valid ids: {', '.join(sorted(entities()))}"


@cache
def entities() -> dict[str, EntityType]:
    """All entity types by id, in file order."""
    # libyaml's safe loader when PyYAML has it: every scan reads this file at startup.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    raw = yaml.load(resources.files(__package__).joinpath("entities.yaml").read_text("utf-8"), Loader=loader)
    out: dict[str, EntityType] = {}
    for row in raw["entities"]:
        out[row["id"]] = EntityType(
            id=row["id"],
            zh=row["zh"],
            en=row["en"],
            pi_class=row["class"],
            personal=bool(row["personal"]),
            sensitive=bool(row["sensitive"]),
            identifier=row["identifier"],
            fideslang=row["fideslang"],
            detectable=bool(row["detectable"]),
            basis=row["basis"],
        )
    return out


def get(entity_id: str) -> EntityType:
    try:
        return entities()[entity_id]
    except KeyError:
        raise UnknownEntity(entity_id) from None


def is_sensitive(entity_id: str) -> bool:
    e = entities().get(entity_id)
    return bool(e and e.sensitive)


def classes() -> dict[str, list[str]]:
    """Entity ids grouped by class, so flows may name a class instead of listing ids."""
    out: dict[str, list[str]] = {}
    for e in entities().values():
        out.setdefault(e.pi_class, []).append(e.id)
    return out


__all__ = ["EntityType", "UnknownEntity", "classes", "entities", "get", "is_sensitive"]
