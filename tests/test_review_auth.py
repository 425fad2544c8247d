"""Reviewer auth and the review API (Step_7.auth, Step_7.review) through FastAPI's TestClient, and the auth CLI."""
from __future__ import annotations

import json
import sys

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from core.errors import PipelineError
from Step_7 import auth
from Step_7.auth import COOKIE, Reviewer, Reviewers, hash_token
from Step_7.review import review_router
from Step_7.store import LabelStore
from tests.test_label_store import add_four

TOKENS = {"ann": "ann-secret-token", "vic": "vic-secret-token"}
JSON_POST = {"X-Requested-With": "review"}


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.delenv(auth.ENV_REVIEWERS, raising=False)
    store = LabelStore(f"sqlite:///{tmp_path}/labels.db")
    ids = add_four(store)
    reviewers = Reviewers([{"name": "ann", "role": "reviewer", "token_sha256": hash_token(TOKENS["ann"])},
                           {"name": "vic", "role": "viewer", "token_sha256": hash_token(TOKENS["vic"])}],
                          secret=b"test-secret")
    app = FastAPI()
    app.include_router(review_router(store, reviewers, order="uncertain", session_hours=1.0))
    yield TestClient(app), store, reviewers, ids
    store.close()


def login(client: TestClient, name: str) -> None:
    response = client.post("/login", data={"token": TOKENS[name]}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/review"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie and "Max-Age=3600" in cookie


def test_no_session_gets_401_on_the_api_and_a_redirect_on_the_page(setup):
    client, _, _, ids = setup
    page = client.get("/review", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login"
    for path in ("/api/review/queue", f"/api/review/items/{ids['A']}", f"/api/review/items/{ids['A']}/image",
                 "/api/review/agreement", "/api/review/events", "/api/review/me"):
        assert client.get(path).status_code == 401, path
    assert client.post(f"/api/review/items/{ids['A']}", json={"action": "hateful"},
                       headers=JSON_POST).status_code == 401
    assert "Reviewer token" in client.get("/login").text


def test_a_wrong_token_gets_401(setup):
    client = setup[0]
    response = client.post("/login", data={"token": "guess"}, follow_redirects=False)
    assert response.status_code == 401 and "Unknown token" in response.text and COOKIE not in response.cookies


def test_a_reviewer_labels_and_the_event_is_stored(setup):
    client, store, _, ids = setup
    login(client, "ann")
    page = client.get("/review")
    assert page.status_code == 200 and "nonce-" in page.headers["content-security-policy"]
    assert client.get("/api/review/me").json()["role"] == "reviewer"
    queue = client.get("/api/review/queue", params={"order": "newest"}).json()
    assert [r["id"] for r in queue["items"]] == [ids[n] for n in "BCDA"] and queue["counts"]["unreviewed"] == 4
    assert client.get(f"/api/review/items/{ids['A']}/image").content == store.image(ids["A"])[0]
    assert client.post(f"/api/review/items/{ids['A']}", json={"action": "hateful"}).status_code == 403  # no header
    done = client.post(f"/api/review/items/{ids['A']}", json={"action": "hateful", "note": "n"}, headers=JSON_POST)
    assert done.status_code == 200 and done.json()["event"]["reviewer"] == "ann"
    assert [(e["item_id"], e["action"], e["note"]) for e in store.events()] == [(ids["A"], "hateful", "n")]
    assert client.get("/api/review/events", params={"item_id": ids["A"]}).json()["events"][0]["new_label"] == \
        "abuse_hate"
    assert client.get(f"/api/review/items/{ids['A']}").json()["status"] == "resolved"
    assert client.post(f"/api/review/items/{ids['A']}", json={"action": "nuke"}, headers=JSON_POST).status_code == 422
    assert client.post("/api/review/items/ffffffffffffffff", json={"action": "benign"},
                       headers=JSON_POST).status_code == 404
    assert client.get("/api/review/agreement").json()["items"] == 0
    out = client.post("/logout", follow_redirects=False)
    assert out.status_code == 303 and client.get("/api/review/me").status_code == 401


def test_a_viewer_is_refused_with_403(setup):
    client, store, _, ids = setup
    login(client, "vic")
    assert len(client.get("/api/review/queue").json()["items"]) == 4
    response = client.post(f"/api/review/items/{ids['A']}", json={"action": "benign"}, headers=JSON_POST)
    assert response.status_code == 403 and "viewer" in response.json()["detail"]
    assert store.events() == []


def test_a_tampered_or_expired_cookie_is_rejected(setup):
    client, _, reviewers, _ = setup
    good = reviewers.issue(Reviewer("ann", "reviewer"), hours=1.0)
    assert reviewers.session(good) == Reviewer("ann", "reviewer")
    promoted = reviewers.issue(Reviewer("vic", "reviewer"), hours=1.0)  # a role the file does not give vic
    forged = Reviewers([], secret=b"other-secret").issue(Reviewer("ann", "reviewer"), hours=1.0)
    payload, signature = good.split(".")
    flipped = payload + "." + ("0" if signature[0] != "0" else "1") + signature[1:]
    expired = reviewers.issue(Reviewer("ann", "reviewer"), hours=1.0, now=1_000_000.0)
    for bad in (promoted, forged, flipped, expired, "garbage", good + "x"):
        assert reviewers.session(bad) is None
        client.cookies.set(COOKIE, bad)
        assert client.get("/api/review/me").status_code == 401
    assert reviewers.session(good, now=10**10) is None
    client.cookies.set(COOKIE, good)
    assert client.get("/api/review/me").json()["name"] == "ann"


def test_a_replaced_token_ends_old_sessions_and_an_odd_cookie_is_a_401(setup):
    client, store, reviewers, _ = setup
    old = reviewers.issue(Reviewer("ann", "reviewer"), hours=1.0)
    rotated = Reviewers([{"name": "ann", "role": "reviewer", "token_sha256": hash_token("a-new-token")}],
                        secret=b"test-secret")  # the same secret: only the token changed
    assert reviewers.session(old) == Reviewer("ann", "reviewer") and rotated.session(old) is None
    assert reviewers.session(old.split(".")[0] + ".\u00e9") is None  # a non-ASCII signature
    odd = {"cookie": f'{COOKIE}="{old.split(".")[0]}.\\351"'}  # the cookie parser decodes the octal escape to é
    assert client.get("/api/review/me", headers=odd).status_code == 401
    assert client.get("/review", headers=odd, follow_redirects=False).status_code == 303


def test_env_reviewers_are_hashed_on_load(tmp_path, monkeypatch):
    monkeypatch.setenv(auth.ENV_REVIEWERS, "eve:viewer:eve-token, zed:reviewer:zed:with:colons")
    reviewers = Reviewers.load(tmp_path / "missing.json")
    assert reviewers.login("eve-token") == Reviewer("eve", "viewer")
    assert reviewers.login("zed:with:colons") == Reviewer("zed", "reviewer")
    assert all("token" not in stored for stored, _ in reviewers.entries)
    monkeypatch.setenv(auth.ENV_REVIEWERS, "eve:admin:x")
    with pytest.raises(PipelineError, match="role"):
        Reviewers.load(tmp_path / "missing.json")


def run_cli(monkeypatch, capsys, *args: str) -> str:
    monkeypatch.setattr(sys, "argv", ["python -m Step_7.auth", *args])
    auth.main()
    return capsys.readouterr().out


def test_the_auth_cli_stores_only_hashes(tmp_path, monkeypatch, capsys):
    path = tmp_path / "reviews" / "reviewers.json"
    out = run_cli(monkeypatch, capsys, "add", "ann", "--role", "reviewer", "--file", str(path))
    token = out.strip().splitlines()[-1]
    run_cli(monkeypatch, capsys, "add", "vic", "--role", "viewer", "--file", str(path))
    text = path.read_text()
    assert token not in text and hash_token(token) in text
    assert [e["name"] for e in json.loads(text)] == ["ann", "vic"]
    assert set(json.loads(text)[0]) == {"name", "role", "token_sha256"}
    assert Reviewers.load(path).login(token) == Reviewer("ann", "reviewer")
    assert run_cli(monkeypatch, capsys, "list", "--file", str(path)).split() == ["ann", "reviewer", "vic", "viewer"]
    with pytest.raises(PipelineError, match="already in"):
        run_cli(monkeypatch, capsys, "add", "ann", "--file", str(path))
    run_cli(monkeypatch, capsys, "remove", "ann", "--file", str(path))
    assert Reviewers.load(path).login(token) is None
    with pytest.raises(PipelineError, match="no reviewer 'ann'"):
        run_cli(monkeypatch, capsys, "remove", "ann", "--file", str(path))
    with pytest.raises(PipelineError, match="name"):
        run_cli(monkeypatch, capsys, "add", "bad|name", "--file", str(path))
    with pytest.raises(SystemExit):
        run_cli(monkeypatch, capsys, "--help")
    assert "python -m Step_7.auth add" in capsys.readouterr().out
