"""The review page in a real browser (Chromium through Playwright) against uvicorn: keyboard labelling,
submit-and-next, a correction from the resolved tab, a viewer refused and a wrong token answered 401.
REVIEW_SCREENSHOT=path saves a screenshot of the page for the docs."""
from __future__ import annotations

import io
import os
import socket
import threading
import time
from pathlib import Path

import pytest
from fastapi import FastAPI
from PIL import Image, ImageDraw

from Step_7.auth import Reviewers, hash_token
from Step_7.review import review_router
from Step_7.store import LabelStore
from tests.test_label_store import add_four

pytestmark = pytest.mark.e2e
CHROMIUM = Path("/usr/bin/chromium")
TOKENS = {"ann": "ann-browser-token", "vic": "vic-browser-token"}


NEIGHBOURS = {"neighbours": [{"id": "synthetic-0042", "label": "benign", "similarity": 0.91},
                              {"id": "synthetic-0007", "label": "abuse_hate", "similarity": 0.84}]}


def meme(seed: int) -> bytes:
    """A 360x270 picture with a caption, so the screenshot shows something like a meme."""
    image = Image.new("RGB", (360, 270), ((60 * seed) % 256, 120, 200 - 30 * seed))
    draw = ImageDraw.Draw(image)
    draw.rectangle((40, 60, 320, 200), fill=(240, 230, 210))
    draw.text((60, 20), f"WHEN THE MEME IS NUMBER {seed}", fill="white")
    draw.text((60, 230), "AND THE MODEL IS NOT SURE", fill="white")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """uvicorn in a thread over a store of four memes; yields (base url, store, ids)."""
    import uvicorn

    store = LabelStore(f"sqlite:///{tmp_path}/labels.db")
    ids = add_four(store, make=meme, extra=NEIGHBOURS)
    reviewers = Reviewers([{"name": n, "role": "reviewer" if n == "ann" else "viewer",
                            "token_sha256": hash_token(t)} for n, t in TOKENS.items()])
    app = FastAPI()
    app.include_router(review_router(store, reviewers, order="uncertain", session_hours=1.0))
    port = free_port()
    served = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=served.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not served.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert served.started, "uvicorn did not start within 15 s"
    yield f"http://127.0.0.1:{port}", store, ids
    served.should_exit = True
    thread.join(10)
    store.close()


@pytest.fixture
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install chromium to run the browser test")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        found = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield found
        found.close()


def log_in(browser, base: str, name: str):
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{base}/review")
    assert page.url.endswith("/login")
    page.fill("#token", TOKENS[name])
    page.click("button[type=submit]")
    page.wait_for_selector("body[data-ready='1']")
    assert page.text_content("#who") == f"{name} ({'reviewer' if name == 'ann' else 'viewer'})"
    return page


def press(page, key: str) -> str:
    """Press a label key on the current item; wait for the next one to load; returns the labelled id."""
    labelled = page.text_content("#item-id")
    page.keyboard.press(key)
    page.wait_for_function("(id) => document.body.dataset.busy === '0' && "
                           "document.getElementById('status').textContent.startsWith(id)", arg=labelled)
    return labelled


def test_keyboard_labelling_correction_and_refusals(server, browser):
    base, store, ids = server
    page = log_in(browser, base, "ann")
    assert page.text_content("#item-id") == ids["A"]  # uncertain order: A D C B
    assert "blurred" in page.get_attribute("#image", "class")
    page.keyboard.press("u")
    assert "blurred" not in page.get_attribute("#image", "class")
    done = [press(page, key) for key in "hbh"]
    assert done == [ids["A"], ids["D"], ids["C"]]
    assert page.text_content("#item-id") == ids["B"]  # submit-and-next reached the last meme
    page.click("#tab-resolved")
    page.wait_for_selector(f"#queue button[data-id='{ids['C']}']")
    page.click(f"#queue button[data-id='{ids['C']}']")
    page.wait_for_function("(id) => document.getElementById('item-id').textContent === id", arg=ids["C"])
    assert press(page, "b") == ids["C"]
    page.wait_for_function("() => document.querySelectorAll('#events tr').length === 3")  # C stays: last resolved
    if os.environ.get("REVIEW_SCREENSHOT"):
        page.screenshot(path=os.environ["REVIEW_SCREENSHOT"], full_page=True)
    log = store.events()
    assert [(e["item_id"], e["action"], e["old_label"], e["new_label"]) for e in log] == [
        (ids["A"], "hateful", None, "abuse_hate"), (ids["D"], "benign", None, "benign"),
        (ids["C"], "hateful", None, "abuse_hate"), (ids["C"], "benign", "abuse_hate", "benign")]
    assert {e["reviewer"] for e in log} == {"ann"}
    assert store.counts() == {"unreviewed": 1, "escalated": 0, "resolved": 3}

    viewer = log_in(browser, base, "vic")
    assert viewer.is_disabled("#actions button[data-action='hateful']")
    status = viewer.evaluate("""(id) => fetch(`/api/review/items/${id}`, {method: 'POST',
        headers: {'Content-Type': 'application/json', 'X-Requested-With': 'review'},
        body: JSON.stringify({action: 'hateful'})}).then((r) => r.status)""", ids["B"])
    assert status == 403
    viewer.keyboard.press("h")
    assert "Viewers cannot label" in viewer.text_content("#status")
    assert len(store.events()) == 4

    stranger = browser.new_context().new_page()
    stranger.goto(f"{base}/login")
    stranger.fill("#token", "not-a-token")
    with stranger.expect_response(lambda r: r.url.endswith("/login") and r.request.method == "POST") as answer:
        stranger.click("button[type=submit]")
    assert answer.value.status == 401
    assert "Unknown token" in stranger.text_content("[role=alert]")
