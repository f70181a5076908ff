"""Lexicon flags for adapted models: which jieba dictionary words cover each character, by class and role."""

from __future__ import annotations

import numpy as np

from piguard.detect import lexicon

CLASS = {name: k for k, name in enumerate(lexicon.CLASSES)}


def _flag(name: str, role: str) -> int:
    return 3 * CLASS[name] + lexicon.ROLES.index(role)


def test_dictionary_words_are_flagged_by_class_and_role() -> None:
    lex = lexicon.load()
    text = "阿森纳主帅说，周杰伦在北京市海淀区演出"
    flags = lex.features(text)
    assert flags.shape == (len(text), lexicon.WIDTH) and flags.dtype == np.float32
    zhou = text.index("周杰伦")
    assert flags[zhou, _flag("PER", "B")] == 1
    assert flags[zhou + 1, _flag("PER", "M")] == 1
    assert flags[zhou + 2, _flag("PER", "E")] == 1
    bj = text.index("北京市")
    assert flags[bj, _flag("LOC", "B")] == 1 and flags[bj + 2, _flag("LOC", "E")] == 1
    assert flags[bj + 1, _flag("LOC", "E")] == 1  # 北京 ends there too: every covering word counts
    hd = text.index("海淀区")
    assert flags[hd, _flag("LOC", "B")] == 1
    assert flags[text.index("，")].sum() == 0  # punctuation is in no word


def test_flags_of_a_padded_batch_match_each_text_alone() -> None:
    lex = lexicon.load()
    texts = ["清华大学的王小明", "北京"]
    batch = lex.batch(texts, 10)
    assert batch.shape == (2, 10, lexicon.WIDTH)
    for i, t in enumerate(texts):
        assert np.array_equal(batch[i, : len(t)], lex.features(t))
        assert batch[i, len(t) :].sum() == 0
    assert batch[0, 0, _flag("ORG", "B")] == 1  # 清华大学 is an organisation (nt)


def test_text_with_no_dictionary_word_and_empty_text() -> None:
    lex = lexicon.load()
    assert lex.features("").shape == (0, lexicon.WIDTH)
    assert lex.features("x").sum() == 0
    assert lex.describe()["dict_sha256"] == lex.sha256 and len(lex.sha256) == 64
