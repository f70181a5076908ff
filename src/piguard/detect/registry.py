"""The detector registry: built-in families plus detectors users add in Python or YAML.

Like Presidio's recognizer registry, every detector answers one question -- where in this text are my
entities -- and the registry runs them all and settles overlaps. Unlike Presidio, the built-in structured
family is one compiled pass, not one regex per recognizer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import yaml

from piguard import taxonomy
from piguard._fs import read_regular_bytes
from piguard.detect.context import _alternation
from piguard.detect.structured import RawHit, find_structured

STRUCTURED_ENTITIES = (
    "CN_RESIDENT_ID", "CN_PASSPORT", "CN_HK_MACAO_PERMIT", "CN_TW_PERMIT", "PHONE_NUMBER", "EMAIL_ADDRESS",
    "BANK_CARD", "IP_ADDRESS", "MAC_ADDRESS", "IMEI", "CN_LICENCE_PLATE", "GPS_COORDINATE", "DATE_OF_BIRTH",
    "CN_USCC",
)  # fmt: skip


@runtime_checkable
class Detector(Protocol):
    """Anything with a name, the entities it can emit, and ``find(text) -> hits``."""

    name: str
    entities: tuple[str, ...]

    def find(self, text: str) -> list[RawHit]: ...


class StructuredDetector:
    name = "structured"
    entities = STRUCTURED_ENTITIES

    def find(self, text: str) -> list[RawHit]:
        return find_structured(text)


def _luhn(value: str) -> bool:
    from stdnum import luhn

    return luhn.is_valid(re.sub(r"\D", "", value))


def _cn_ric(value: str) -> bool:
    from stdnum.cn import ric

    return ric.is_valid(value)


def _iso7064_mod_11_2(value: str) -> bool:
    from stdnum.iso7064 import mod_11_2

    return mod_11_2.is_valid(re.sub(r"[^0-9Xx]", "", value).upper())


VALIDATORS: dict[str, Callable[[str], bool]] = {
    "none": lambda _v: True,
    "luhn": _luhn,
    "cn_ric": _cn_ric,
    "iso7064_mod_11_2": _iso7064_mod_11_2,
}


class DetectorConfigError(ValueError):
    """A user-defined detector file that cannot be used; the message names the file and the field."""


@dataclass
class PatternDetector:
    """A regex with an optional validator and context words: the shape of a user-defined detector."""

    name: str
    entity: str
    pattern: str
    confidence: float = 0.6
    validator: str = "none"
    context: list[str] = field(default_factory=list)
    context_boost: float = 0.2
    context_window: int = 24

    def __post_init__(self) -> None:
        self.entities = (self.entity,)
        self._rx = re.compile(self.pattern)
        self._validate = VALIDATORS[self.validator]
        self._ctx = _alternation(self.context) if self.context else None

    def find(self, text: str) -> list[RawHit]:
        hits: list[RawHit] = []
        for m in self._rx.finditer(text):
            if not self._validate(m.group(0)):
                continue
            conf = self.confidence
            if self._ctx is not None:
                window = text[max(0, m.start() - self.context_window) : m.start()].lower()
                if self._ctx.search(window):
                    conf = min(1.0, conf + self.context_boost)
            hits.append(RawHit(self.entity, m.start(), m.end(), conf, self.name))
        return hits


def load_detector_file(path: str | Path) -> list[PatternDetector]:
    """Read user detectors from YAML.

    A detector file looks like this::

        detectors:
          - name: employee_id
            entity: EMPLOYEE_ID        # any id; unknown ids are treated as non-sensitive personal data
            pattern: 'EMP-\\d{6}'
            validator: none            # none | luhn | cn_ric | iso7064_mod_11_2
            confidence: 0.8
            context: [工号, employee]
    """
    p = Path(path)
    try:
        raw = yaml.safe_load(read_regular_bytes(p).decode("utf-8"))
    except OSError as exc:
        raise DetectorConfigError(f"{p}: cannot read detector file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise DetectorConfigError(f"{p}: cannot read detector file: not UTF-8 (byte {exc.start})") from None
    except yaml.MarkedYAMLError as exc:
        # The problem and its line only: PyYAML's full message quotes the offending line of the file.
        line = exc.problem_mark.line + 1 if exc.problem_mark else 0
        what = f"malformed YAML at line {line}: {exc.problem or exc.context}"
        raise DetectorConfigError(f"{p}: cannot read detector file: {what}") from None
    except (yaml.YAMLError, RecursionError, ValueError, OverflowError) as exc:
        # Nested too deeply, or a scalar that cannot become a value (a 5,000-digit integer, a bad date).
        raise DetectorConfigError(
            f"{p}: cannot read detector file: malformed YAML ({type(exc).__name__})"
        ) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("detectors"), list):
        raise DetectorConfigError(f"{p}: expected a mapping with a 'detectors' list")
    out: list[PatternDetector] = []
    for i, item in enumerate(raw["detectors"], 1):
        if not isinstance(item, dict):
            raise DetectorConfigError(f"{p}: detector #{i} is not a mapping")
        missing = [k for k in ("name", "entity", "pattern") if k not in item]
        if missing:
            raise DetectorConfigError(f"{p}: detector #{i} lacks {', '.join(missing)}")
        validator = item.get("validator", "none")
        if validator not in VALIDATORS:
            valid = ", ".join(VALIDATORS)
            name = item["name"]
            msg = f"{p}: detector {name!r}: unknown validator {validator!r}; valid: {valid}"
            raise DetectorConfigError(msg)
        try:
            out.append(
                PatternDetector(
                    name=str(item["name"]),
                    entity=str(item["entity"]),
                    pattern=str(item["pattern"]),
                    confidence=float(item.get("confidence", 0.6)),
                    validator=validator,
                    context=[str(w) for w in item.get("context", [])],
                )
            )
        except re.error as exc:
            raise DetectorConfigError(f"{p}: detector {item['name']!r}: bad pattern: {exc}") from None
    return out


class Registry:
    """An ordered set of detectors. ``Registry.default()`` holds every built-in family."""

    def __init__(self, detectors: Iterable[Detector] = ()) -> None:
        self._detectors: list[Detector] = list(detectors)

    @classmethod
    def default(cls) -> Registry:
        reg = cls([StructuredDetector()])
        for factory in _builtin_factories():
            reg.add(factory())
        return reg

    def add(self, detector: Detector) -> Registry:
        if any(d.name == detector.name for d in self._detectors):
            raise ValueError(f"a detector named {detector.name!r} is already registered")
        self._detectors.append(detector)
        return self

    def remove(self, name: str) -> None:
        self._detectors = [d for d in self._detectors if d.name != name]

    def use_model(self, directory: str | Path) -> Registry:
        """Add an adapted model (``piguard model train``) in place of the detectors it supersedes: each
        detector whose entities the model reports (the rule-and-LAC names detector for PERSON) is removed.
        Raises ``adapted.ModelError`` for a directory that is not a usable model."""
        from piguard.detect.adapted import AdaptedDetector

        det = AdaptedDetector(directory)
        covered = set(det.entities)
        self._detectors = [d for d in self._detectors if not (d.entities and set(d.entities) <= covered)]
        return self.add(det)

    def load_yaml(self, path: str | Path) -> Registry:
        for det in load_detector_file(path):
            self.add(det)
        return self

    @property
    def detectors(self) -> tuple[Detector, ...]:
        return tuple(self._detectors)

    def entities(self) -> set[str]:
        return {e for d in self._detectors for e in d.entities}

    def find(self, text: str, entities: set[str] | None = None) -> list[RawHit]:
        hits: list[RawHit] = []
        for det in self._detectors:
            if entities is not None and not entities.intersection(det.entities):
                continue
            hits.extend(det.find(text))
        return hits


# The built-in families beyond the structured one: (module, class, name, entities). Their modules (and the
# libraries they need: polars' regex engine, the name model) are imported when a detector first reads text,
# so a scan for structured entities alone never loads them. tests/detect/test_registry.py checks the names
# and entities here against the classes.
BUILTIN_FAMILIES = (
    ("piguard.detect.names", "NameDetector", "names", ("PERSON",)),
    ("piguard.detect.address", "AddressDetector", "address", ("ADDRESS",)),
    (
        "piguard.detect.sensitive",
        "SensitiveContextDetector",
        "sensitive_context",
        ("HEALTH_INFO", "RELIGIOUS_BELIEF", "BIOMETRIC", "MINOR_INFO", "FINANCIAL_INFO", "WHEREABOUTS"),
    ),
)


class LazyDetector:
    """A built-in detector whose module is imported on its first ``find``."""

    def __init__(self, module: str, attr: str, name: str, entities: tuple[str, ...]) -> None:
        self.module, self.attr, self.name, self.entities = module, attr, name, entities
        self._detector: Detector | None = None

    @property
    def detector(self) -> Detector:
        if self._detector is None:
            self._detector = getattr(__import__(self.module, fromlist=[self.attr]), self.attr)()
        return self._detector

    def find(self, text: str) -> list[RawHit]:
        return self.detector.find(text)

    def __repr__(self) -> str:
        return f"LazyDetector({self.name!r})"


def _builtin_factories() -> list[Callable[[], Detector]]:
    """Built-in families beyond the structured one, imported lazily so a missing optional part
    (e.g. the name model) never breaks structured detection."""
    from importlib import util

    factories: list[Callable[[], Detector]] = []
    for modname, attr, name, entities in BUILTIN_FAMILIES:
        if util.find_spec(modname) is None:
            continue
        factories.append(lambda m=modname, a=attr, n=name, e=entities: LazyDetector(m, a, n, e))
    return factories


def entity_is_personal(entity: str) -> bool:
    e = taxonomy.entities().get(entity)
    return True if e is None else e.personal
