"""The web layer over ``piguard.rights``: the JSON API (``/api/v1``, OpenAPI at ``/openapi.json``), the
portal for data subjects and the staff dashboard. Every decision is the service's; this module parses,
authenticates and renders.

Security by default: staff routes need a token or a session; a subject token reads only its subject's
requests (another's is a 404, as if it did not exist); forms carry a signed CSRF token bound to a cookie;
cookies are HttpOnly and SameSite=Strict; templates autoescape; responses forbid framing, sniffing and
any script (the pages have none); validation errors never echo the input, which may be a phone number."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from fastapi import Depends, FastAPI, Form, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from piguard.rights import (
    REQUEST_TYPES,
    RightsError,
    RightsService,
    Staff,
    complaint_catalog,
    refusal_reasons,
)
from piguard.rights.stores import correctable_fields
from piguard.web.i18n import error_text, texts

SUBJECT_COOKIE = "pg_subject"
STAFF_COOKIE = "pg_staff"
CSRF_COOKIE = "pg_csrf"
LANG_COOKIE = "pg_lang"
CSRF_MAX_AGE = 2 * 3600
_REPORT_NAME = re.compile(r"^[\w.-]{1,200}\.(html|json|sarif|csv|txt)$")
RequestType = Literal[tuple(REQUEST_TYPES)]  # type: ignore[valid-type]  # built from the one list of types


class Identifier(BaseModel):
    kind: Literal["phone", "email", "resident_id"]
    value: str = Field(min_length=1, max_length=254)


class RequestIn(BaseModel):
    type: RequestType
    identifier: Identifier
    details: dict[str, Any] = Field(default_factory=dict)
    contact: Identifier | None = Field(
        None, description="where to send the code when identifier is a resident ID"
    )
    lang: Literal["zh", "en"] = "zh"


class Created(BaseModel):
    id: str
    status: str


class VerifyIn(BaseModel):
    code: str = Field(min_length=1, max_length=20)


class Verified(BaseModel):
    status: str
    due: str
    token: str


class RequestOut(BaseModel):
    id: str
    type: str
    status: str
    due: str | None
    outcome: dict[str, Any] | None


class DecisionIn(BaseModel):
    decision: Literal["approve", "refuse"]
    reason: str | None = Field(
        None, max_length=64, description="a refusal reason code (GET /api/v1/refusal-reasons)"
    )
    answer: str | None = Field(None, max_length=5000)


class Preferences(BaseModel):
    personalization: bool
    targeted_push: bool


async def _housekeeping(service: RightsService, every: float) -> None:
    """Now and then: wipe sealed identifiers past their download period, expire stale codes, and recompute
    provisional due dates once the calendar package knows the year."""
    log = logging.getLogger("piguard.web")
    while True:
        await asyncio.sleep(every)
        try:
            await run_in_threadpool(service.purge)
            await run_in_threadpool(service.refresh_deadlines)
        except Exception as exc:  # keep serving; the next round tries again
            log.warning("housekeeping failed: %s", type(exc).__name__)


MAX_BODY = 65_536  # the largest form or JSON body a person or a system needs to send


class SecurityHeaders:
    """Security headers on every response and a cap on request bodies. Pure ASGI middleware (cheaper than
    BaseHTTPMiddleware on the hot status read)."""

    HEADERS: tuple[tuple[bytes, bytes], ...] = (
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"cache-control", b"no-store"),
        (
            b"content-security-policy",
            b"default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
            b"frame-ancestors 'none'; base-uri 'none'",
        ),
    )

    def __init__(self, app: Any, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", ()))
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await self._refuse(send, 413, b"the request body is larger than 65536 bytes")
            return
        if length is None and b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            # The server delivers at most a declared length; an open-ended body could be any size.
            await self._refuse(send, 411, b"send the body with a Content-Length")
            return

        started = False

        async def send_with_headers(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                have = {k.lower() for k, _ in headers}
                message["headers"] = headers + [(k, v) for k, v in self.HEADERS if k not in have]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:
            # A database that went away, a bug: one log line naming the kind of failure. A traceback or the
            # exception's text could quote SQL parameters, and the person gets a plain 500.
            logging.getLogger("piguard.web").error(
                "internal error (%s) on %s %s", type(exc).__name__, scope.get("method"), scope.get("path")
            )
            if not started:
                await self._refuse(send, 500, b"internal error; try again later")

    async def _refuse(self, send: Any, status: int, message: bytes) -> None:
        body = b'{"error":"' + message + b'"}'
        head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": head + list(self.HEADERS)})
        await send({"type": "http.response.body", "body": body})


def create_app(
    service: RightsService,
    *,
    reports_dir: str | Path | None = None,
    secure_cookies: bool = False,
    housekeeping_seconds: float | None = None,
) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = (
            asyncio.create_task(_housekeeping(service, housekeeping_seconds))
            if housekeeping_seconds
            else None
        )
        yield
        if task is not None:
            task.cancel()

    app = FastAPI(
        lifespan=lifespan,
        title="piguard rights",
        version="1",
        description="Data-subject requests (PIPL Art. 15, 24, 44-50, 65; 2019 C6): portal, staff, API.",
        docs_url=None,  # the Swagger page loads scripts from a CDN; /openapi.json is the contract
        redoc_url=None,
    )
    app.add_middleware(SecurityHeaders)
    templates = Jinja2Templates(directory=str(resources.files("piguard.web").joinpath("templates")))
    app.mount(
        "/static",
        StaticFiles(directory=str(resources.files("piguard.web").joinpath("static"))),
        name="static",
    )
    signer = URLSafeTimedSerializer(service.secrets.web_secret(), salt="piguard.csrf")
    reports = Path(reports_dir) if reports_dir else None
    app.state.service = service

    # ---- errors ----
    def wants_html(request: Request) -> bool:
        return not request.url.path.startswith("/api/")

    def page_error(request: Request, status: int, message: str) -> Response:
        hint = error_text(status, lang_of(request))
        return render(request, "error.html", {"message": message, "hint": hint}, status=status)

    @app.exception_handler(RightsError)
    async def rights_error(request: Request, exc: RightsError) -> Response:
        if wants_html(request):
            return page_error(request, exc.status, str(exc))
        return JSONResponse({"error": str(exc)}, exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        # Name the field and the rule, never the value (it may be someone's phone number).
        problems = []
        for e in exc.errors():
            loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            msg = "malformed JSON" if e.get("type") == "json_invalid" else e.get("msg", "invalid")
            problems.append(f"{loc}: {msg}" if loc else msg)
        message = "; ".join(problems)[:500] or "invalid request"
        if wants_html(request):
            return page_error(request, 422, message)
        return JSONResponse({"error": message}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = getattr(exc, "headers", None)
        if wants_html(request):
            return page_error(request, exc.status_code, str(exc.detail))
        return JSONResponse({"error": str(exc.detail)}, exc.status_code, headers=headers)

    # ---- helpers ----
    def lang_of(request: Request) -> str:
        q = request.query_params.get("lang")
        if q in ("zh", "en"):
            return q
        return "en" if request.cookies.get(LANG_COOKIE) == "en" else "zh"

    def csrf_pair(request: Request) -> tuple[str, str | None]:
        raw = request.cookies.get(CSRF_COOKIE)
        new = None
        if not raw or len(raw) > 64:
            raw = new = secrets.token_urlsafe(24)
        return signer.dumps(raw), new

    def render(request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> Response:
        lang = lang_of(request)
        token, new_cookie = csrf_pair(request)
        t = texts(lang)
        ctx = {"t": t, "lang": lang, "csrf": token, "path": request.url.path, **ctx}
        resp = templates.TemplateResponse(request, name, ctx, status_code=status)
        if new_cookie:
            resp.set_cookie(CSRF_COOKIE, new_cookie, httponly=True, samesite="strict", secure=secure_cookies)
        if request.query_params.get("lang") in ("zh", "en"):
            resp.set_cookie(LANG_COOKIE, lang, samesite="lax", secure=secure_cookies, max_age=365 * 86400)
        return resp

    def check_csrf(request: Request, token: str) -> None:
        raw = request.cookies.get(CSRF_COOKIE)
        try:
            ok = raw is not None and secrets.compare_digest(signer.loads(token, max_age=CSRF_MAX_AGE), raw)
        except BadSignature:
            ok = False
        if not ok:
            raise RightsError(
                "the form has expired or did not come from this site; reload the page and try again", 403
            )

    def client(request: Request) -> str:
        return request.client.host if request.client else ""

    def bearer(authorization: str | None) -> str | None:
        if authorization and authorization[:7].lower() == "bearer ":
            return authorization[7:].strip()
        return None

    def api_staff(authorization: str | None = Header(None)) -> Staff:
        token = bearer(authorization)
        staff = service.staff_for(token, "staff", "session") if token else None
        if staff is None:
            raise StarletteHTTPException(
                401,
                "a staff token is needed (Authorization: Bearer ...)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return staff

    def api_subject(authorization: str | None = Header(None)) -> str:
        token = bearer(authorization)
        subject = service.subject_for(token) if token else None
        if subject is None:
            raise StarletteHTTPException(
                401,
                "the token from verification is needed (Authorization: Bearer ...)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return subject

    def redirect(url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=303)

    # ---- API: the person's side ----
    @app.post("/api/v1/requests", status_code=202, response_model=Created, tags=["requests"])
    def api_submit(body: RequestIn, request: Request) -> dict[str, str]:
        """Open a request; a one-time code goes to the identifier (or to `contact` for a resident ID). The
        answer is the same whether or not we hold anything about that identifier."""
        return service.submit(
            body.type,
            body.identifier.model_dump(),
            body.details,
            contact=body.contact.model_dump() if body.contact else None,
            client=client(request),
            lang=body.lang,
        )

    @app.post("/api/v1/requests/{rid}/verify", response_model=Verified, tags=["requests"])
    def api_verify(rid: str, body: VerifyIn, request: Request) -> dict[str, Any]:
        """Check the code. The answer's token reads this subject's requests; keep it."""
        return service.verify(rid, body.code, client=client(request))

    @app.get("/api/v1/requests/{rid}", response_model=RequestOut, tags=["requests"])
    def api_get(rid: str, authorization: str | None = Header(None)) -> Response:
        try:
            # Already JSON-shaped: a JSONResponse skips re-validating it against the response model.
            return JSONResponse(service.status(rid, bearer(authorization) or ""))
        except RightsError as exc:
            if exc.status == 401:
                raise StarletteHTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
            raise

    @app.get("/api/v1/requests/{rid}/copy", tags=["requests"])
    def api_copy(
        rid: str, format: Literal["json", "csv"] = "json", subject: str = Depends(api_subject)
    ) -> Response:
        """The portable copy of an access or copy request (PIPL Art. 45)."""
        data, media = service.copy(rid, subject, format)
        return Response(
            data, media_type=media, headers={"content-disposition": f'attachment; filename="{rid}.{format}"'}
        )

    @app.get("/api/v1/refusal-reasons", tags=["reference"])
    def api_reasons() -> list[dict[str, Any]]:
        return [{**r.as_dict(), "applies_to": list(r.applies_to)} for r in refusal_reasons().values()]

    @app.get("/api/v1/complaint-categories", tags=["reference"])
    def api_complaint_categories() -> dict[str, Any]:
        return complaint_catalog()

    # ---- API: staff ----
    @app.get("/api/v1/staff/requests", tags=["staff"])
    def api_queue(
        status: str | None = None,
        type: str | None = None,
        overdue: bool = False,
        due_soon: bool = False,
        open: bool = False,
        limit: int = Query(200, ge=1, le=1000),
        staff: Staff = Depends(api_staff),
    ) -> list[dict[str, Any]]:
        _agent(staff)
        return service.queue(
            status=status, type_=type, overdue=overdue, due_soon=due_soon, open_only=open, limit=limit
        )

    @app.get("/api/v1/staff/requests/{rid}", tags=["staff"])
    def api_staff_get(rid: str, staff: Staff = Depends(api_staff)) -> dict[str, Any]:
        _agent(staff)
        return service.request_for_staff(rid)

    @app.post("/api/v1/staff/requests/{rid}/decision", tags=["staff"])
    def api_decide(rid: str, body: DecisionIn, staff: Staff = Depends(api_staff)) -> dict[str, Any]:
        """Approve (an approved deletion runs and its outcome holds the signed receipt) or refuse with a
        reason code that cites the article."""
        return service.decide(rid, body.decision, staff, body.reason, body.answer)

    @app.get("/api/v1/staff/stats", tags=["staff"])
    def api_stats(staff: Staff = Depends(api_staff)) -> dict[str, Any]:
        _agent(staff)
        return service.stats()

    @app.get("/api/v1/subjects/{pseudonym}/preferences", response_model=Preferences, tags=["service"])
    def api_preferences(pseudonym: str, staff: Staff = Depends(api_staff)) -> dict[str, bool]:
        """For the controller's recommender: has this subject turned off personalisation or targeted push?"""
        if staff.role not in ("service", "admin"):
            raise RightsError("a service or admin token is needed", 403)
        return service.preferences(pseudonym)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    def _agent(staff: Staff) -> None:
        if staff.role not in ("agent", "admin"):
            raise RightsError("an agent or admin token is needed", 403)

    # ---- portal ----
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def portal(request: Request) -> Response:
        return render(
            request,
            "portal.html",
            {
                "types": list(REQUEST_TYPES),
                "fields": correctable_fields(service.stores),
                "categories": complaint_catalog()["categories"],
            },
        )

    @app.post("/request", include_in_schema=False)
    def portal_submit(
        request: Request,
        csrf: str = Form(""),
        type: str = Form(...),
        kind: str = Form(...),
        value: str = Form(..., max_length=254),
        contact_kind: str = Form("email"),
        contact_value: str = Form("", max_length=254),
        field: str = Form(""),
        new_value: str = Form("", max_length=500),
        category: str = Form(""),
        text: str = Form("", max_length=5000),
        consent_id: str = Form("", max_length=120),
        note: str = Form("", max_length=2000),
    ) -> Response:
        check_csrf(request, csrf)
        details: dict[str, Any] = {"note": note} if note.strip() else {}
        if type == "correction":
            details["corrections"] = {field: new_value} if field else {}
        elif type == "complaint":
            details.update(category=category, text=text)
        elif type == "withdraw_consent" and consent_id.strip():
            details["consent_id"] = consent_id.strip()
        contact = {"kind": contact_kind, "value": contact_value} if kind == "resident_id" else None
        out = service.submit(
            type,
            {"kind": kind, "value": value},
            details,
            contact=contact,
            client=client(request),
            lang=lang_of(request),
        )
        return redirect(f"/r/{out['id']}/verify")

    @app.get("/r/{rid}/verify", response_class=HTMLResponse, include_in_schema=False)
    def portal_verify_form(rid: str, request: Request) -> Response:
        return render(request, "verify.html", {"rid": rid})

    @app.post("/r/{rid}/verify", include_in_schema=False)
    def portal_verify(
        rid: str, request: Request, csrf: str = Form(""), code: str = Form(..., max_length=20)
    ) -> Response:
        check_csrf(request, csrf)
        out = service.verify(rid, code, client=client(request))
        resp = redirect(f"/r/{rid}")
        resp.set_cookie(
            SUBJECT_COOKIE,
            out["token"],
            httponly=True,
            samesite="strict",
            secure=secure_cookies,
            max_age=30 * 86400,
        )
        return resp

    def cookie_subject(request: Request) -> str:
        token = request.cookies.get(SUBJECT_COOKIE)
        subject = service.subject_for(token) if token else None
        if subject is None:
            raise RightsError("verify your request first (the code we sent)", 401)
        return subject

    @app.get("/r/{rid}", response_class=HTMLResponse, include_in_schema=False)
    def portal_status(rid: str, request: Request) -> Response:
        subject = cookie_subject(request)
        req = service.get(rid, subject)
        data = None
        if req["type"] in ("access", "copy") and req["status"] == "completed":
            try:
                data = service.personal_data(rid, subject)
            except RightsError:
                data = None
        return render(request, "status.html", {"req": req, "data": data})

    @app.get("/r/{rid}/copy.{fmt}", include_in_schema=False)
    def portal_copy(rid: str, fmt: str, request: Request) -> Response:
        subject = cookie_subject(request)
        data, media = service.copy(rid, subject, fmt)
        return Response(
            data, media_type=media, headers={"content-disposition": f'attachment; filename="{rid}.{fmt}"'}
        )

    @app.get("/my", response_class=HTMLResponse, include_in_schema=False)
    def portal_mine(request: Request) -> Response:
        return render(request, "mine.html", {"reqs": service.requests_of(cookie_subject(request))})

    # ---- staff dashboard ----
    def session_staff(request: Request) -> Staff | None:
        token = request.cookies.get(STAFF_COOKIE)
        staff = service.staff_for(token, "session") if token else None
        return staff if staff is not None and staff.role in ("agent", "admin") else None

    @app.get("/staff/login", response_class=HTMLResponse, include_in_schema=False)
    def staff_login_form(request: Request) -> Response:
        return render(request, "login.html", {})

    @app.post("/staff/login", include_in_schema=False)
    def staff_login(
        request: Request,
        csrf: str = Form(""),
        name: str = Form(..., max_length=120),
        password: str = Form(..., max_length=1000),
    ) -> Response:
        check_csrf(request, csrf)
        token = service.login(name, password, client=client(request))
        resp = redirect("/staff")
        resp.set_cookie(
            STAFF_COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies, max_age=12 * 3600
        )
        return resp

    @app.post("/staff/logout", include_in_schema=False)
    def staff_logout(request: Request, csrf: str = Form("")) -> Response:
        check_csrf(request, csrf)
        token = request.cookies.get(STAFF_COOKIE)
        if token:
            service.logout(token)
        resp = redirect("/staff/login")
        resp.delete_cookie(STAFF_COOKIE)
        return resp

    @app.get("/staff", response_class=HTMLResponse, include_in_schema=False)
    def dashboard(request: Request, status: str = "", type: str = "") -> Response:
        staff = session_staff(request)
        if staff is None:
            return redirect("/staff/login")
        files = (
            sorted(p.name for p in reports.iterdir() if p.is_file() and _REPORT_NAME.match(p.name))
            if reports and reports.is_dir()
            else []
        )
        return render(
            request,
            "dashboard.html",
            {
                "staff": staff,
                "stats": service.stats(),
                "overdue": service.queue(overdue=True),
                "due_soon": service.queue(due_soon=True),
                "queue": service.queue(status=status or None, type_=type or None, open_only=not status),
                "status": status,
                "type": type,
                "types": list(REQUEST_TYPES),
                "reports": files,
            },
        )

    @app.get("/staff/r/{rid}", response_class=HTMLResponse, include_in_schema=False)
    def staff_request(rid: str, request: Request) -> Response:
        staff = session_staff(request)
        if staff is None:
            return redirect("/staff/login")
        req = service.request_for_staff(rid)
        reasons = [r for r in refusal_reasons().values() if req["type"] in r.applies_to]
        return render(request, "staff_request.html", {"staff": staff, "req": req, "reasons": reasons})

    @app.post("/staff/r/{rid}/decision", include_in_schema=False)
    def staff_decide(
        rid: str,
        request: Request,
        csrf: str = Form(""),
        decision: str = Form(...),
        reason: str = Form(""),
        answer: str = Form("", max_length=5000),
    ) -> Response:
        check_csrf(request, csrf)
        staff = session_staff(request)
        if staff is None:
            raise RightsError("log in first", 401)
        service.decide(rid, decision, staff, reason or None, answer or None)
        return redirect(f"/staff/r/{rid}")

    @app.get("/staff/reports/{name}", include_in_schema=False)
    def staff_report(name: str, request: Request) -> Response:
        if session_staff(request) is None:
            return redirect("/staff/login")
        if reports is None or not _REPORT_NAME.match(name) or not (reports / name).is_file():
            raise RightsError("no such report", 404)
        # Reports are piguard's own output but render in a sandbox all the same: no script, no same origin.
        return FileResponse(
            reports / name,
            headers={
                "content-security-policy": "sandbox; default-src 'none'; "
                "style-src 'unsafe-inline'; img-src data:"
            },
        )

    return app
