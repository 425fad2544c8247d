"""The label store (Step_7.store) on SQLite: ids, queue orders, reviewer actions and their log, agreement, crash
safety and the export view. `round_trip` is shared with the PostgreSQL test."""
from __future__ import annotations

import hashlib
import io
import threading

import pytest
from PIL import Image
from sqlalchemy import event

from Step_7.store import LabelStore


def png(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (seed % 256, (seed * 7) % 256, (seed * 13) % 256)).save(out, format="PNG")
    return out.getvalue()


def scored(p: float, experts: dict | None = None, threshold: float = 0.5) -> dict:
    return {"probability": p, "threshold": threshold, "flagged": p >= threshold,
            "label": "abuse_hate" if p >= threshold else "benign", "gates": {"text": 0.6, "vision": 0.4},
            "experts": experts or {"text": p, "vision": p}, "neighbours": [], "text_source": "ocr"}


@pytest.fixture
def store(tmp_path):
    found = LabelStore(f"sqlite:///{tmp_path}/reviews/labels.db")
    yield found
    found.close()


def add_four(store: LabelStore, make=png, extra: dict | None = None) -> dict[str, str]:
    """A..D with distinct uncertainty, disagreement, age and source; `make(seed)` draws the image bytes and
    `extra` joins every scored dict."""
    specs = {"A": (0.52, {"text": 0.5, "vision": 0.6}, 1.0, "traffic"),
             "B": (0.90, {"text": 0.1, "vision": 0.95}, 4.0, "traffic"),
             "C": (0.30, {"text": 0.3, "vision": 0.35}, 3.0, "label_issue"),
             "D": (0.45, {"text": 0.2, "vision": 0.7}, 2.0, "import")}
    return {name: store.add_item(image=make(i), media_type="image/png", source=source, text=f"meme {name}",
                                 scored={**scored(p, experts), **(extra or {})}, created=created)[0]
            for i, (name, (p, experts, created, source)) in enumerate(specs.items())}


def test_the_same_image_twice_keeps_one_row(store, tmp_path):
    data = png(1)
    first = store.add_item(image=data, media_type="image/png", source="traffic", text="hi", scored=scored(0.7))
    again = store.add_item(image=data, media_type="image/png", source="import", text="other", scored=scored(0.1))
    assert first == (hashlib.sha256(data).hexdigest()[:16], True)
    assert again == (first[0], False)
    assert store.counts() == {"unreviewed": 1, "escalated": 0, "resolved": 0}
    assert store.item(first[0])["text"] == "hi"
    assert store.image(first[0]) == (data, "image/png")
    assert (tmp_path / "reviews" / "labels.db").is_file()
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


@pytest.mark.parametrize("order, expected", [("uncertain", "ADCB"), ("disagreement", "BDAC"),
                                             ("newest", "BCDA"), ("label_issue", "CADB")])
def test_each_queue_order(store, order, expected):
    ids = add_four(store)
    names = {v: k for k, v in ids.items()}
    assert "".join(names[row["id"]] for row in store.queue(order=order)) == expected
    assert len(store.queue(order=order, limit=2)) == 2


def test_ties_are_broken_by_id(store):
    ids = [store.add_item(image=png(i), media_type="image/png", source="traffic", text=None, scored=scored(0.6),
                          created=5.0)[0] for i in range(5)]
    for order in ("uncertain", "disagreement", "newest", "label_issue"):
        assert [row["id"] for row in store.queue(order=order)] == sorted(ids)


def test_a_reviewer_does_not_see_again_what_they_labelled_or_skipped(store):
    ids = add_four(store)
    store.review(ids["A"], reviewer="ann", role="reviewer", action="skip")
    store.review(ids["C"], reviewer="ann", role="reviewer", action="escalate")
    assert [r["id"] for r in store.queue(reviewer="ann")] == [ids["D"], ids["B"]]
    assert [r["id"] for r in store.queue(reviewer="bob")] == [ids["A"], ids["D"], ids["B"]]
    assert [r["id"] for r in store.queue(status="escalated", reviewer="ann")] == [ids["C"]]
    store.review(ids["C"], reviewer="ann", role="reviewer", action="hateful")
    assert store.queue(status="escalated") == []
    assert store.queue(status="resolved", reviewer="ann") == []
    assert [r["id"] for r in store.queue(status="resolved", reviewer="bob")] == [ids["C"]]
    with pytest.raises(ValueError, match="order must be one of"):
        store.queue(order="random")


def test_actions_and_the_event_log(store):
    ids = add_four(store)
    first = store.review(ids["A"], reviewer="ann", role="reviewer", action="hateful", note="slur")
    assert store.item(ids["A"])["label"] == "abuse_hate" and store.item(ids["A"])["status"] == "resolved"
    store.review(ids["B"], reviewer="ann", role="reviewer", action="escalate")
    assert (store.item(ids["B"])["status"], store.item(ids["B"])["label"]) == ("escalated", None)
    before = store.item(ids["D"])
    store.review(ids["D"], reviewer="ann", role="reviewer", action="skip")
    after = store.item(ids["D"])
    assert {k: v for k, v in after.items() if k != "events"} == {k: v for k, v in before.items() if k != "events"}
    fix = store.review(ids["A"], reviewer="ann", role="reviewer", action="benign")
    assert (fix["old_label"], fix["new_label"], fix["old_status"], fix["new_status"]) == (
        "abuse_hate", "benign", "resolved", "resolved")
    log = store.events()
    assert [(e["id"], e["action"]) for e in log] == [(1, "hateful"), (2, "escalate"), (3, "skip"), (4, "benign")]
    assert log[0] == first and first["note"] == "slur" and first["old_status"] == "unreviewed"
    assert [e["action"] for e in store.item(ids["A"])["events"]] == ["hateful", "benign"]
    assert store.events(ids["D"])[0]["new_status"] == "unreviewed"


def test_a_viewer_is_refused_and_bad_input_fails(store):
    ids = add_four(store)
    with pytest.raises(PermissionError, match="viewer"):
        store.review(ids["A"], reviewer="vic", role="viewer", action="hateful")
    with pytest.raises(ValueError, match="action must be one of"):
        store.review(ids["A"], reviewer="ann", role="reviewer", action="delete")
    for call in (lambda: store.item("0" * 16), lambda: store.image("0" * 16),
                 lambda: store.review("0" * 16, reviewer="ann", role="reviewer", action="benign")):
        with pytest.raises(KeyError):
            call()
    assert store.events() == [] and store.item(ids["A"])["status"] == "unreviewed"


def test_kappa_on_a_hand_computed_case(store):
    assert store.agreement()["kappa"] is None
    ids = [store.add_item(image=png(i), media_type="image/png", source="traffic", text=None, scored=scored(0.5))[0]
           for i in range(6)]
    # ann: H H B B, bob: H B B B -> p_o = 3/4, p_e = .5 * .25 + .5 * .75 = .5, kappa = (.75 - .5) / .5 = .5
    for i, (a, b) in enumerate(["HH", "HB", "BB", "BB"]):
        store.review(ids[i], reviewer="ann", role="reviewer", action="hateful" if i == 3 else
                     {"H": "hateful", "B": "benign"}[a])
        store.review(ids[i], reviewer="bob", role="reviewer", action={"H": "hateful", "B": "benign"}[b])
    store.review(ids[3], reviewer="ann", role="reviewer", action="benign")  # ann's latest label counts
    store.review(ids[1], reviewer="cat", role="reviewer", action="hateful")  # a third reviewer is not compared
    store.review(ids[4], reviewer="ann", role="reviewer", action="hateful")  # one reviewer: not an item
    store.review(ids[5], reviewer="bob", role="reviewer", action="escalate")
    found = store.agreement()
    assert (found["items"], found["pairs"], found["labelled"]) == (4, 4, 5)
    assert found["kappa"] == pytest.approx(0.5) and found["observed"] == pytest.approx(0.75)


def test_a_failure_mid_write_rolls_back(store):
    ids = add_four(store)

    def fail_on_event_insert(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO EVENTS"):
            raise RuntimeError("disk gone")

    event.listen(store.engine, "before_cursor_execute", fail_on_event_insert)
    with pytest.raises(RuntimeError, match="disk gone"):
        store.review(ids["A"], reviewer="ann", role="reviewer", action="hateful")
    event.remove(store.engine, "before_cursor_execute", fail_on_event_insert)
    item = store.item(ids["A"])
    assert (item["status"], item["label"], item["events"]) == ("unreviewed", None, [])
    assert store.review(ids["A"], reviewer="ann", role="reviewer", action="hateful")["id"] == 1


def test_reopening_the_file_keeps_committed_data(tmp_path):
    url = f"sqlite:///{tmp_path}/labels.db"
    first = LabelStore(url)
    ids = add_four(first)
    first.review(ids["B"], reviewer="ann", role="reviewer", action="hateful")
    first.close()
    again = LabelStore(url)
    assert again.counts() == {"unreviewed": 3, "escalated": 0, "resolved": 1}
    assert [e["item_id"] for e in again.events()] == [ids["B"]]
    assert again.image(ids["C"])[0] == png(2)
    again.close()


def test_reviewed_lists_resolved_items_for_export(store):
    ids = add_four(store)
    store.review(ids["D"], reviewer="bob", role="reviewer", action="benign")
    store.review(ids["B"], reviewer="ann", role="reviewer", action="hateful")
    store.review(ids["B"], reviewer="bob", role="reviewer", action="hateful")
    store.review(ids["A"], reviewer="ann", role="reviewer", action="hateful")
    store.review(ids["A"], reviewer="ann", role="reviewer", action="escalate")  # no longer resolved
    rows = store.reviewed()
    assert [r["id"] for r in rows] == sorted([ids["B"], ids["D"]])
    by_id = {r["id"]: r for r in rows}
    assert set(by_id[ids["B"]]) == {"id", "label", "text", "media_type", "reviewers", "resolved_at"}
    assert by_id[ids["B"]]["reviewers"] == ["ann", "bob"] and by_id[ids["B"]]["label"] == "abuse_hate"
    assert by_id[ids["D"]]["label"] == "benign" and by_id[ids["D"]]["text"] == "meme D"
    assert by_id[ids["B"]]["resolved_at"] == store.events(ids["B"])[-1]["at"]


def test_concurrent_writers_all_succeed(store):
    errors = []

    def work(worker: int) -> None:
        try:
            for i in range(10):
                key, _ = store.add_item(image=png(worker * 100 + i), media_type="image/png", source="traffic",
                                        text=None, scored=scored(0.5))
                store.review(key, reviewer=f"r{worker}", role="reviewer", action="benign")
        except Exception as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and store.counts()["resolved"] == 40 and len(store.events()) == 40


def round_trip(store: LabelStore) -> None:
    """add, queue, review, events, agreement, reviewed: the same calls on any backend."""
    ids = add_four(store)
    assert store.add_item(image=png(0), media_type="image/png", source="traffic", text=None,
                          scored=scored(0.1))[1] is False
    assert [r["id"] for r in store.queue(order="uncertain")] == [ids[n] for n in "ADCB"]
    assert [r["id"] for r in store.queue(order="label_issue", limit=1)] == [ids["C"]]
    store.review(ids["A"], reviewer="ann", role="reviewer", action="hateful")
    store.review(ids["A"], reviewer="bob", role="reviewer", action="hateful")
    store.review(ids["D"], reviewer="ann", role="reviewer", action="benign")
    store.review(ids["D"], reviewer="bob", role="reviewer", action="hateful")
    store.review(ids["D"], reviewer="bob", role="reviewer", action="benign", note="misread")
    store.review(ids["C"], reviewer="ann", role="reviewer", action="skip")
    with pytest.raises(PermissionError):
        store.review(ids["B"], reviewer="vic", role="viewer", action="benign")
    assert [r["id"] for r in store.queue(reviewer="ann")] == [ids["B"]]
    log = store.events()
    assert [e["id"] for e in log] == sorted(e["id"] for e in log) and len(log) == 6
    assert (log[4]["old_label"], log[4]["new_label"], log[4]["note"]) == ("abuse_hate", "benign", "misread")
    assert store.agreement()["items"] == 2 and store.agreement()["kappa"] == pytest.approx(1.0)
    assert [(r["id"], r["label"]) for r in store.reviewed()] == sorted([(ids["A"], "abuse_hate"),
                                                                        (ids["D"], "benign")])
    assert store.counts() == {"unreviewed": 2, "escalated": 0, "resolved": 2}
    assert store.image(ids["B"]) == (png(1), "image/png")
    assert store.item(ids["B"])["scored"]["experts"] == {"text": 0.1, "vision": 0.95}


def test_round_trip_on_sqlite(store):
    round_trip(store)
