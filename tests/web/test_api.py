"""The HTTP contract (issue 26 item 7) and the web security promises, through the real FastAPI app on real
SQLite and PostgreSQL ledgers: another subject's request is invisible, staff routes need a token, forms need
CSRF, hostile strings are stored inert and rendered escaped, errors never echo the input."""

from __future__ import annotations

import logging
import re

import pytest
from fastapi.testclient import TestClient
from rights_env import EMAIL, OTHER_PHONE, PHONE, Env, check_schema
from sqlalchemy import create_engine

from piguard.rights import verify_receipt

HOSTILE = "<script>alert('x')</script>' OR '1'='1'; DROP TABLE rights_requests;-- \" onmouseover=\"alert(1)"


def _open(
    client: TestClient, env: Env, type_: str = "access", value: str = PHONE, **details
) -> tuple[str, str]:
    r = client.post(
        "/api/v1/requests",
        json={"type": type_, "identifier": {"kind": "phone", "value": value}, "details": details},
    )
    assert r.status_code == 202, r.text
    rid = r.json()["id"]
    v = client.post(f"/api/v1/requests/{rid}/verify", json={"code": env.code(rid)})
    assert v.status_code == 200, v.text
    return rid, v.json()["token"]


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("ledger_url", ["sqlite", "postgresql"], indirect=True)
def test_request_verify_read_contract(client: TestClient, env: Env) -> None:
    r = client.post(
        "/api/v1/requests",
        json={"type": "access", "identifier": {"kind": "phone", "value": PHONE}, "details": {}},
    )
    assert r.status_code == 202 and r.json() == {"id": r.json()["id"], "status": "awaiting_verification"}
    rid = r.json()["id"]
    v = client.post(f"/api/v1/requests/{rid}/verify", json={"code": env.code(rid)})
    assert v.status_code == 200
    body = v.json()
    assert set(body) == {"status", "due", "token"} and body["status"] == "verified"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", body["due"])
    g = client.get(f"/api/v1/requests/{rid}", headers=_auth(body["token"]))
    assert g.status_code == 200 and set(g.json()) == {"id", "type", "status", "due", "outcome"}
    assert g.json()["status"] == "completed" and g.json()["due"] == body["due"]
    check_schema("rights-request", g.json())
    c = client.get(f"/api/v1/requests/{rid}/copy?format=csv", headers=_auth(body["token"]))
    assert c.status_code == 200 and "王小明" in c.content.decode("utf-8-sig")
    assert c.headers["content-disposition"] == f'attachment; filename="{rid}.csv"'
    spec = client.get("/openapi.json").json()
    for path in (
        "/api/v1/requests",
        "/api/v1/requests/{rid}/verify",
        "/api/v1/requests/{rid}",
        "/api/v1/staff/requests",
        "/api/v1/staff/requests/{rid}/decision",
        "/api/v1/subjects/{pseudonym}/preferences",
    ):
        assert path in spec["paths"]


@pytest.mark.parametrize("ledger_url", ["sqlite", "postgresql"], indirect=True)
def test_another_subjects_token_sees_nothing(client: TestClient, env: Env) -> None:
    mine, my_token = _open(client, env)
    theirs, their_token = _open(client, env, value=OTHER_PHONE)
    assert client.get(f"/api/v1/requests/{theirs}", headers=_auth(my_token)).status_code == 404
    assert client.get(f"/api/v1/requests/{theirs}/copy", headers=_auth(my_token)).status_code == 404
    assert client.get(f"/api/v1/requests/{mine}", headers=_auth(their_token)).status_code == 404
    assert client.get(f"/api/v1/requests/{mine}").status_code == 401
    assert client.get(f"/api/v1/requests/{mine}", headers=_auth("forged")).status_code == 401
    # the portal page behaves the same with the subject cookie
    client.cookies.set("pg_subject", my_token)
    assert client.get(f"/r/{theirs}").status_code == 404


@pytest.mark.parametrize("ledger_url", ["sqlite", "postgresql"], indirect=True)
def test_staff_routes_need_a_staff_token(client: TestClient, env: Env) -> None:
    rid, subject_token = _open(client, env, "deletion")
    agent = env.service.add_staff("agent1", "agent")
    service = env.service.add_staff("recommender", "service")
    routes = [
        ("get", "/api/v1/staff/requests"),
        ("get", f"/api/v1/staff/requests/{rid}"),
        ("post", f"/api/v1/staff/requests/{rid}/decision"),
        ("get", "/api/v1/staff/stats"),
        ("get", "/api/v1/subjects/s_x/preferences"),
    ]
    for method, path in routes:
        for headers in ({}, _auth(subject_token), _auth("x" * 43)):
            r = client.request(method, path, headers=headers, json={"decision": "approve"})
            assert r.status_code == 401, (path, headers)
            assert r.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/v1/staff/requests", headers=_auth(service)).status_code == 403
    q = client.get("/api/v1/staff/requests?open=true", headers=_auth(agent))
    assert [x["id"] for x in q.json()] == [rid] and q.json()[0]["working_days_left"] == 15

    d = client.post(
        f"/api/v1/staff/requests/{rid}/decision", headers=_auth(agent), json={"decision": "approve"}
    )
    assert d.status_code == 200 and d.json()["status"] == "completed"
    verify_receipt(d.json()["outcome"]["receipt"], env.signing.public)
    seen = client.get(f"/api/v1/requests/{rid}", headers=_auth(subject_token)).json()
    assert seen["outcome"]["receipt"]["signature"] == d.json()["outcome"]["receipt"]["signature"]
    again = client.post(
        f"/api/v1/staff/requests/{rid}/decision",
        headers=_auth(agent),
        json={"decision": "refuse", "reason": "technically_infeasible"},
    )
    assert again.status_code == 409


def test_preferences_for_the_recommender(client: TestClient, env: Env) -> None:
    from rights_env import KEY

    from piguard.ledger import pseudonym

    service = env.service.add_staff("recommender", "service")
    subject = pseudonym(PHONE, KEY)
    url = f"/api/v1/subjects/{subject}/preferences"
    assert client.get(url, headers=_auth(service)).json() == {"personalization": True, "targeted_push": True}
    _open(client, env, "opt_out_personalization", personalization=False, targeted_push=False)
    assert client.get(url, headers=_auth(service)).json() == {
        "personalization": False,
        "targeted_push": False,
    }


def test_bad_input_gets_a_clear_error_that_does_not_echo_it(
    client: TestClient, env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    cases = [
        (b'{"type": "access", "identifier": {"kind": "phone", "value": "13812345678"', "malformed JSON"),
        (b'{"type": "forget_me", "identifier": {"kind": "phone", "value": "13812345678"}}', "type"),
        (b'{"type": "access", "identifier": {"kind": "fax", "value": "13812345678"}}', "identifier.kind"),
        (b'{"type": "access", "identifier": {"kind": "phone", "value": "1381234567"}}', "not a valid phone"),
        (b'{"type": "access", "identifier": "13812345678"}', "identifier"),
        (b"[]", "Input should be a valid dictionary"),
        (b"\xff\xfe", "malformed JSON"),
    ]
    for raw, expect in cases:
        r = client.post("/api/v1/requests", content=raw, headers={"content-type": "application/json"})
        assert r.status_code == 422, raw
        assert expect in r.json()["error"], (raw, r.json())
        assert "1381234567" not in r.text
    r = client.post("/api/v1/requests/r_nope/verify", json={"code": "123456"})
    assert r.status_code == 404 and "error" in r.json()
    assert "1381234567" not in caplog.text


def test_hostile_strings_are_stored_inert_and_rendered_escaped(client: TestClient, env: Env) -> None:
    page = client.get("/")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    form = {
        "csrf": csrf,
        "type": "complaint",
        "kind": "email",
        "value": EMAIL,
        "category": "C3",
        "text": HOSTILE,
        "note": HOSTILE,
        "consent_id": HOSTILE[:100],
        "new_value": HOSTILE[:400],
        "field": HOSTILE[:50],
        "contact_value": HOSTILE[:200],
    }
    r = client.post("/request", data=form, follow_redirects=False)
    assert r.status_code == 303, r.text
    rid = r.headers["location"].split("/")[2]
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get(f"/r/{rid}/verify").text).group(1)
    r = client.post(f"/r/{rid}/verify", data={"csrf": csrf, "code": env.code(rid)}, follow_redirects=False)
    assert r.status_code == 303 and "pg_subject" in r.cookies
    stored = env.service.request_for_staff(rid)["details"]
    assert stored == {"category": "C3", "text": HOSTILE, "note": HOSTILE}  # kept as typed: inert data
    assert env.service.stats()["by_type"]["complaint"] == {"verified": 1}  # the table is still there

    env.service.add_staff("admin1", "admin", "pw-for-test")
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/staff/login").text).group(1)
    r = client.post(
        "/staff/login",
        data={"csrf": csrf, "name": "admin1", "password": "pw-for-test"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    detail = client.get(f"/staff/r/{rid}").text
    assert "<script>" not in detail and 'onmouseover="alert' not in detail
    assert "\\u003cscript\\u003e" in detail or "&lt;script&gt;" in detail
    dash = client.get("/staff")
    assert dash.status_code == 200 and "<script>" not in dash.text
    # Staff's answer reaches the person escaped too.
    csrf = re.search(r'name="csrf" value="([^"]+)"', detail).group(1)
    r = client.post(
        f"/staff/r/{rid}/decision",
        data={"csrf": csrf, "decision": "approve", "answer": HOSTILE},
        follow_redirects=False,
    )
    assert r.status_code == 303
    seen = client.get(f"/r/{rid}")
    assert seen.status_code == 200 and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in seen.text
    assert "<script>" not in seen.text
    csp = dash.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp  # no script may run at all
    assert dash.headers["x-frame-options"] == "DENY"


def test_forms_need_csrf(client: TestClient, env: Env) -> None:
    form = {"type": "access", "kind": "phone", "value": PHONE}
    assert client.post("/request", data=form).status_code == 403
    client.get("/")
    assert client.post("/request", data={**form, "csrf": "forged"}).status_code == 403
    # a token from another visitor's session does not fit this visitor's cookie
    other = TestClient(client.app, base_url="http://127.0.0.1")
    theirs = re.search(r'name="csrf" value="([^"]+)"', other.get("/").text).group(1)
    assert client.post("/request", data={**form, "csrf": theirs}).status_code == 403
    assert not list(env.outbox.iterdir())  # no code went out


def test_staff_login_is_rate_limited_and_says_nothing_about_names(client: TestClient, env: Env) -> None:
    from piguard.rights import Limits

    env.service.limits = Limits(logins_per_name=(2, 900))
    env.service.add_staff("admin1", "admin", "right-password")
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/staff/login").text).group(1)
    unknown = client.post("/staff/login", data={"csrf": csrf, "name": "nobody", "password": "x"})
    wrong = client.post("/staff/login", data={"csrf": csrf, "name": "admin1", "password": "x"})
    assert unknown.status_code == wrong.status_code == 401
    assert "wrong name or password" in unknown.text and "wrong name or password" in wrong.text
    client.post("/staff/login", data={"csrf": csrf, "name": "admin1", "password": "y"})
    locked = client.post("/staff/login", data={"csrf": csrf, "name": "admin1", "password": "right-password"})
    assert locked.status_code == 429
    assert client.get("/staff", follow_redirects=False).headers["location"] == "/staff/login"


def test_code_guessing_over_http_is_locked_out(client: TestClient, env: Env) -> None:
    r = client.post(
        "/api/v1/requests", json={"type": "deletion", "identifier": {"kind": "phone", "value": PHONE}}
    )
    rid = r.json()["id"]
    codes = [f"{n:06d}" for n in range(5) if f"{n:06d}" != env.code(rid)][:5]
    statuses = [client.post(f"/api/v1/requests/{rid}/verify", json={"code": c}).status_code for c in codes]
    assert statuses == [400, 400, 400, 400, 429]
    assert client.post(f"/api/v1/requests/{rid}/verify", json={"code": env.code(rid)}).status_code == 404


def test_oversized_and_open_ended_bodies_are_refused(client: TestClient, env: Env) -> None:
    big = {
        "type": "complaint",
        "identifier": {"kind": "phone", "value": PHONE},
        "details": {"category": "C1", "text": "x" * 70_000},
    }
    r = client.post("/api/v1/requests", json=big)
    assert r.status_code == 413 and "larger than 65536" in r.json()["error"]
    r = client.post(
        "/api/v1/requests",
        content=iter([b'{"type": "access"}']),
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 411
    assert not list(env.outbox.iterdir())


def test_error_pages_speak_the_persons_language(client: TestClient, env: Env) -> None:
    r = client.get("/r/r_00000000000000000000")
    assert r.status_code == 401 and "请先完成验证" in r.text
    client.get("/?lang=en")
    r = client.get("/r/r_00000000000000000000")
    assert "Verify first" in r.text


def test_a_failure_inside_is_one_log_line_and_a_plain_500(
    client: TestClient, env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    rid, token = _open(client, env)
    env.ledger.engine.dispose()
    env.service.reader = env.service.engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/x")
    r = client.get(f"/api/v1/requests/{rid}", headers=_auth(token))
    assert r.status_code == 500 and r.json() == {"error": "internal error; try again later"}
    assert "internal error (OperationalError) on GET" in caplog.text
    assert "Traceback" not in caplog.text and token not in caplog.text
