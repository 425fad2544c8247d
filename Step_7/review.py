"""The review page and its JSON API: reviewers log in with a token, label queued memes, correct resolved ones.

CSRF: the session cookie is SameSite=Strict (a cross-site request carries no session), and every JSON POST must
also carry the header `X-Requested-With: review`, which a cross-site form cannot set and a cross-site fetch cannot
send without a CORS preflight this app never answers."""
# no `from __future__ import annotations`: FastAPI has to resolve the closure-local `person` annotations
import html
import secrets
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from Step_7.auth import COOKIE, Reviewer, Reviewers
from Step_7.store import ACTIONS, ORDERS, STATUSES, LabelStore

PAGE = Path(__file__).with_name("review_page.html")
CSRF_HEADER, CSRF_VALUE = "X-Requested-With", "review"
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/gif", "image/bmp", "image/tiff")
LOGIN_FORM = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Review login</title>
<style nonce="{nonce}">body{{font:16px system-ui,sans-serif;max-width:24rem;margin:4rem auto}}input,button{{font:inherit;
padding:.4rem;width:100%;box-sizing:border-box;margin:.3rem 0}}.error{{color:#b00020}}</style></head><body>
<h1>Review queue</h1><form method="post" action="/login"><label for="token">Reviewer token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Log in</button></form><p class="error" role="alert">{message}</p>
<p>No token? Ask an admin: <code>python -m Step_7.auth add NAME --role reviewer</code></p></body></html>"""


class Action(BaseModel):
    """The body of POST /api/review/items/{id}."""

    action: Literal[ACTIONS]  # type: ignore[valid-type]
    note: str | None = Field(default=None, max_length=2000)


def _secured(body: str, nonce: str, status: int = 200) -> HTMLResponse:
    policy = (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; img-src 'self'; "
              "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
    return HTMLResponse(body, status_code=status, headers={
        "Content-Security-Policy": policy, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer"})


def login_page(message: str = "", status: int = 200) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    return _secured(LOGIN_FORM.format(nonce=nonce, message=html.escape(message)), nonce, status)


def review_router(store: LabelStore, reviewers: Reviewers, *, order: str, session_hours: float) -> APIRouter:
    """The review routes over `store`; `order` is the default queue order, sessions last `session_hours`."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {tuple(ORDERS)}, got {order!r}")

    def who(request: Request) -> Reviewer:
        found = reviewers.session(request.cookies.get(COOKIE))
        if found is None:
            raise HTTPException(401, "not logged in or session expired: log in at /login")
        return found

    router = APIRouter()
    person = Annotated[Reviewer, Depends(who)]
    add_page_routes(router, reviewers, session_hours=session_hours)
    add_read_routes(router, store, person, order=order, session_hours=session_hours)
    add_review_route(router, store, person)
    return router


def not_found(item_id: str) -> HTTPException:
    return HTTPException(404, f"no item {item_id!r} in the review store")


def add_page_routes(router: APIRouter, reviewers: Reviewers, *, session_hours: float) -> None:
    """GET /review, GET and POST /login, POST /logout."""
    page = PAGE.read_text(encoding="utf-8")

    @router.get("/review", response_class=HTMLResponse, include_in_schema=False)
    def review_page(request: Request) -> Response:
        if reviewers.session(request.cookies.get(COOKIE)) is None:
            return RedirectResponse("/login", status_code=303)
        nonce = secrets.token_urlsafe(16)
        return _secured(page.replace("__NONCE__", nonce), nonce)

    @router.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(request: Request) -> Response:
        if reviewers.session(request.cookies.get(COOKIE)) is not None:
            return RedirectResponse("/review", status_code=303)
        return login_page()

    @router.post("/login", include_in_schema=False)
    def login(request: Request, token: Annotated[str, Form()] = "") -> Response:
        person = reviewers.login(token.strip()) if token.strip() else None
        if person is None:
            return login_page("Unknown token: check it, or ask an admin for a new one.", status=401)
        response = RedirectResponse("/review", status_code=303)
        response.set_cookie(COOKIE, reviewers.issue(person, session_hours), max_age=int(session_hours * 3600),
                            path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https")
        return response

    @router.post("/logout", include_in_schema=False)
    def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return response


def add_read_routes(router: APIRouter, store: LabelStore, person: Any, *, order: str, session_hours: float) -> None:
    """The GET routes of /api/review; `person` is the annotation that resolves the logged-in reviewer."""

    @router.get("/api/review/me")
    def me(who: person) -> dict:
        return {"name": who.name, "role": who.role, "order": order, "orders": list(ORDERS),
                "statuses": list(STATUSES), "session_hours": session_hours}

    @router.get("/api/review/queue")
    def queue(who: person, order_: Annotated[str | None, Query(alias="order")] = None,
              status: str = "unreviewed", limit: Annotated[int, Query(ge=1, le=500)] = 50) -> dict:
        # unreviewed and escalated leave out what this reviewer already labelled or skipped; resolved shows all
        mine = who.name if who.role == "reviewer" and status != "resolved" else None
        try:
            rows = store.queue(order=order_ or order, status=status, limit=limit, reviewer=mine)
        except ValueError as err:
            raise HTTPException(422, str(err)) from None
        return {"order": order_ or order, "status": status, "items": rows, "counts": store.counts()}

    @router.get("/api/review/items/{item_id}")
    def item(item_id: str, who: person) -> dict:
        try:
            return store.item(item_id)
        except KeyError:
            raise not_found(item_id) from None

    @router.get("/api/review/items/{item_id}/image")
    def image(item_id: str, who: person) -> Response:
        try:
            data, media_type = store.image(item_id)
        except KeyError:
            raise not_found(item_id) from None
        return Response(data, media_type=media_type if media_type in IMAGE_TYPES else "application/octet-stream",
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600"})

    @router.get("/api/review/agreement")
    def agreement(who: person) -> dict:
        return store.agreement()

    @router.get("/api/review/events")
    def events(who: person, item_id: str | None = None) -> dict:
        return {"events": store.events(item_id)}


def add_review_route(router: APIRouter, store: LabelStore, person: Any) -> None:
    """POST /api/review/items/{id}: label, skip or escalate (reviewers only, with the CSRF header)."""

    @router.post("/api/review/items/{item_id}")
    def act(item_id: str, body: Action, request: Request, who: person) -> JSONResponse:
        if request.headers.get(CSRF_HEADER) != CSRF_VALUE:
            raise HTTPException(403, f"missing header {CSRF_HEADER}: {CSRF_VALUE} (the review page sends it)")
        try:
            done = store.review(item_id, reviewer=who.name, role=who.role, action=body.action, note=body.note)
        except PermissionError as err:
            raise HTTPException(403, str(err)) from None
        except KeyError:
            raise not_found(item_id) from None
        return JSONResponse({"event": done, "counts": store.counts()})
