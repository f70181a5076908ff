"""Policy reading (encodings, HTML, PDF), extraction and the classifier."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from piguard.apps import PolicyError, analyse, read_policy
from piguard.apps.classifier import LABELS, PolicyClassifier, load_default
from piguard.apps.policy import policy_text

POLICIES = Path(__file__).parent / "fixtures" / "policies"


def test_gb18030_and_utf8_read_alike() -> None:
    assert read_policy(POLICIES / "lender_complete_gb18030.txt") == read_policy(
        POLICIES / "lender_complete.txt"
    )


def test_policy_bytes_behind_a_stray_mark_are_read_as_utf8(tmp_path: Path) -> None:
    # FF FE before UTF-8 (an editor's leftover) is not UTF-16: read as such, the whole policy is lost.
    text = read_policy(POLICIES / "lender_complete.txt")
    p = tmp_path / "policy.txt"
    p.write_bytes(b"\xff\xfe" + (POLICIES / "lender_complete.txt").read_bytes())
    assert read_policy(p) == text


def test_html_policy(tmp_path: Path) -> None:
    text = read_policy(POLICIES / "lender_complete.txt")
    body = "".join(f"<p>{line}</p>" for line in text.splitlines())
    p = tmp_path / "policy.html"
    p.write_text(f"<html><head><script>var x='通讯录';</script></head><body>{body}</body></html>", "utf-8")
    html_facts = analyse(read_policy(p), str(p))
    txt_facts = analyse(text)
    assert sorted(html_facts.declared_entities) == sorted(txt_facts.declared_entities)
    assert "var x" not in " ".join(html_facts.sentences)


def _pdf(text: str) -> bytes:
    """A one-page PDF with ``text`` in Helvetica (hand-assembled: pypdf reads PDFs, it does not typeset)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]  # fmt: skip
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + o + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def test_pdf_policy_and_bad_pdfs() -> None:
    text = policy_text(_pdf("We collect your email address to send receipts."), "p.pdf")
    assert "email address" in text
    assert "EMAIL_ADDRESS" in analyse(text).declared_entities
    assert analyse(text).script == "non_chinese"
    with pytest.raises(PolicyError, match="unreadable PDF"):
        policy_text(b"%PDF-1.4\n garbage", "bad.pdf")


def test_empty_policy_is_a_named_error(tmp_path: Path) -> None:
    p = tmp_path / "empty.txt"
    p.write_bytes(b"")
    with pytest.raises(PolicyError, match="empty policy"):
        analyse(read_policy(p), str(p))
    with pytest.raises(PolicyError, match="cannot read"):
        read_policy(tmp_path / "missing.txt")


def test_declarations_of_the_complete_policy() -> None:
    f = analyse(read_policy(POLICIES / "lender_complete.txt"))
    assert {"PHONE_NUMBER", "CN_RESIDENT_ID", "BANK_CARD", "CONTACT_LIST", "PRECISE_LOCATION"} <= set(
        f.declared_entities
    )
    assert set(f.sdks_named) == {"jpush", "amap_location"}
    assert all(f.channels.get(k) for k in ("deletion", "correction", "cancellation", "withdraw", "complaint"))
    assert f.max_response_working_days == 15
    assert f.entity_optional["CONTACT_LIST"] is True
    assert {"kind": "phone", "masked": "400-***-4567"} in f.contacts
    assert all("privacy@" not in c["masked"] for c in f.contacts)  # contact details are masked


def test_response_time_in_calendar_days_and_chinese_numerals() -> None:
    f = analyse("我们将在三十天内回复您的请求。我们会在十五个工作日内处理投诉。")
    got = sorted((d["days"], d["unit"]) for d in f.response_days)
    assert got == [(15, "working days"), (30, "calendar days")]
    assert f.max_response_working_days == pytest.approx(21.4)


def test_negated_collection_is_not_a_declaration() -> None:
    f = analyse("我们不会收集您的通讯录。我们会收集您的手机号码用于注册。")
    assert "CONTACT_LIST" in f.denied_entities and "CONTACT_LIST" not in f.declared_entities
    assert "PHONE_NUMBER" in f.declared_entities


def test_shipped_model_carries_attribution_and_labels_sentences() -> None:
    m = load_default()
    assert "CAPP-130" in m.meta["attribution"] and "CC BY 4.0" in m.meta["attribution"]
    got = m.predict(
        ["如您对本隐私政策有任何疑问，请通过客服电话与我们联系。", "我们会收集您的手机号码用于注册账号。"]
    )
    assert "contact" in got[0]
    assert "collection" in got[1]


@pytest.mark.slow  # importing and fitting scikit-learn: tens of seconds on a loaded machine
def test_numpy_model_reproduces_scikit_learn() -> None:
    pytest.importorskip("sklearn")
    from piguard.apps import train

    sents = [s for s in read_policy(POLICIES / "lender_complete.txt").splitlines() if s.strip()]
    y = np.zeros((len(sents), len(LABELS)), dtype=np.int8)
    y[::2, 0] = 1
    y[1::3, 8] = 1
    cfg = train.Config(min_df=1, tune_thresholds=False)
    model = train.fit(sents, y, cfg)
    again = PolicyClassifier.from_json(model.to_json())
    vec = train._vectorizer(cfg).fit(sents)
    want = np.asarray(vec.transform(sents) @ model.coef.T) + model.intercept
    assert np.allclose(again.scores(sents), want, atol=0.02)
