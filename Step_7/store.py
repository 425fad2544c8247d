"""The label store: memes waiting for review, reviewers' labels and the append-only event log, in SQLite (default)
or PostgreSQL through SQLAlchemy. Every write is one transaction; queue orders are columns computed at insert."""
from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path

from sqlalchemy import (
    JSON,
    Column,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

SOURCES = ("traffic", "import", "label_issue")
STATUSES = ("unreviewed", "escalated", "resolved")
ACTIONS = ("hateful", "benign", "skip", "escalate")
LABELLING = ("hateful", "benign")
WRITERS = ("reviewer",)

metadata = MetaData()
items = Table(
    "items", metadata,
    Column("id", String(16), primary_key=True),  # first 16 hex digits of the image's sha256
    Column("image", LargeBinary, nullable=False),
    Column("media_type", String(100), nullable=False),
    Column("source", String(16), nullable=False),
    Column("created", Float, nullable=False),
    Column("text", Text),
    Column("scored", JSON, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("label", String(100)),
    Column("resolved_at", Float),
    Column("uncertainty", Float, nullable=False),   # |probability - threshold|
    Column("disagreement", Float, nullable=False),  # max - min of the experts' positive probabilities
    Column("issue_rank", Float, nullable=False),  # a label issue's self-confidence (lowest first), else 2
)
events = Table(
    "events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_id", String(16), ForeignKey("items.id"), nullable=False, index=True),
    Column("reviewer", String(100), nullable=False),
    Column("role", String(16), nullable=False),
    Column("action", String(16), nullable=False),
    Column("old_label", String(100)),
    Column("new_label", String(100)),
    Column("old_status", String(16), nullable=False),
    Column("new_status", String(16), nullable=False),
    Column("at", Float, nullable=False),
    Column("note", Text),
)
ITEM_FIELDS = [c for c in items.c if c.name != "image"]
ORDERS = {
    "uncertain": (items.c.uncertainty.asc(), items.c.id),
    "disagreement": (items.c.disagreement.desc(), items.c.id),
    "newest": (items.c.created.desc(), items.c.id),
    "label_issue": (items.c.issue_rank.asc(), items.c.uncertainty.asc(), items.c.id),
}


def item_id(image: bytes) -> str:
    """An item's id: the first 16 hex digits of the sha256 of its image bytes."""
    return hashlib.sha256(image).hexdigest()[:16]


def ordering_keys(scored: dict, source: str) -> dict:
    """The queue-order columns of a scored meme (a missing threshold counts as 0.5)."""
    probability = scored.get("probability")
    if not isinstance(probability, (int, float)) or not math.isfinite(probability):
        raise ValueError(f"scored['probability'] must be a finite number, got {probability!r}")
    threshold = scored.get("threshold")
    threshold = 0.5 if threshold is None else float(threshold)
    experts = [float(v) for v in (scored.get("experts") or {}).values() if v is not None and math.isfinite(v)]
    return {"uncertainty": abs(float(probability) - threshold),
            "disagreement": max(experts) - min(experts) if experts else 0.0,
            "issue_rank": issue_rank(scored, source)}


def issue_rank(scored: dict, source: str) -> float:
    """Suspected label errors first, least self-confident (most likely mislabelled) first; then everything else."""
    if source != "label_issue":
        return 2.0
    confidence = scored.get("self_confidence")
    return float(confidence) if isinstance(confidence, (int, float)) and math.isfinite(confidence) else 0.0


def _sqlite_connect(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # the "begin" listener below issues BEGIN itself
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", "busy_timeout=30000"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # writers take the write lock up front: a read transaction upgraded later fails at once instead of waiting
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")


def open_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets its folder created, WAL, foreign keys and a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    memory = parsed.database in (None, "", ":memory:")
    if not memory:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"check_same_thread": False},
                           **({"poolclass": StaticPool} if memory else {}))
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


class LabelStore:
    """Scored memes, their review status and labels, and every reviewer action (append-only events).

    Args:
        url: a SQLAlchemy URL: sqlite:///data/reviews/labels.db or postgresql+psycopg://user:pass@host/db.
        positive / negative: the class names the actions 'hateful' / 'benign' set.
    """

    def __init__(self, url: str, *, positive: str = "abuse_hate", negative: str = "benign"):
        self.url = url
        self.labels = {"hateful": positive, "benign": negative}
        self.engine = open_engine(url)
        self._writer = self.engine.execution_options(write=True)
        metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def add_item(self, *, image: bytes, media_type: str, source: str, text: str | None, scored: dict,
                 created: float | None = None) -> tuple[str, bool]:
        """Queue a meme as unreviewed; returns (id, created_new). The same image again keeps the first row."""
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
        key = item_id(image)
        row = {"id": key, "image": image, "media_type": media_type, "source": source, "text": text,
               "scored": scored, "created": time.time() if created is None else float(created),
               "status": "unreviewed", "label": None, **ordering_keys(scored, source)}
        try:
            with self._writer.begin() as conn:
                if conn.execute(select(items.c.id).where(items.c.id == key)).first() is not None:
                    return key, False
                conn.execute(insert(items).values(**row))
        except IntegrityError:  # PostgreSQL: the same image inserted by a concurrent writer
            with self.engine.connect() as conn:
                if conn.execute(select(items.c.id).where(items.c.id == key)).first() is not None:
                    return key, False
            raise
        return key, True

    def queue(self, *, order: str = "uncertain", status: str = "unreviewed", limit: int = 50,
              reviewer: str | None = None) -> list[dict]:
        """Items of one status in queue order; with `reviewer`, those they already labelled or skipped are left out."""
        if order not in ORDERS:
            raise ValueError(f"order must be one of {tuple(ORDERS)}, got {order!r}")
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        query = select(*ITEM_FIELDS).where(items.c.status == status)
        if reviewer is not None:
            seen = select(events.c.item_id).where(events.c.reviewer == reviewer,
                                                  events.c.action.in_(LABELLING + ("skip",)))
            query = query.where(items.c.id.not_in(seen))
        query = query.order_by(*ORDERS[order]).limit(max(1, int(limit)))
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def item(self, item_id: str) -> dict:
        """Every field but the image bytes, plus 'events' (KeyError for an unknown id)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(*ITEM_FIELDS).where(items.c.id == item_id)).mappings().first()
            if row is None:
                raise KeyError(item_id)
            found = dict(row)
            found["events"] = self._events(conn, item_id)
        return found

    def image(self, item_id: str) -> tuple[bytes, str]:
        """(image bytes, media type) of an item (KeyError for an unknown id)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(items.c.image, items.c.media_type).where(items.c.id == item_id)).first()
        if row is None:
            raise KeyError(item_id)
        return bytes(row.image), row.media_type

    def review(self, item_id: str, *, reviewer: str, role: str, action: str, note: str | None = None) -> dict:
        """Apply one reviewer action and log it; returns the event. Labelling again corrects (old -> new label)."""
        if role not in WRITERS:
            if role == "viewer":
                raise PermissionError(f"'{reviewer}' is a viewer and cannot label; ask for a reviewer token")
            raise ValueError(f"role must be one of {WRITERS + ('viewer',)}, got {role!r}")
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, got {action!r}")
        if not reviewer:
            raise ValueError("reviewer must be a non-empty name")
        with self._writer.begin() as conn:
            current = conn.execute(select(items.c.label, items.c.status).where(items.c.id == item_id)
                                   .with_for_update()).first()
            if current is None:
                raise KeyError(item_id)
            label, status, now = current.label, current.status, time.time()
            changes = {}
            if action in LABELLING:
                label, status = self.labels[action], "resolved"
                changes = {"label": label, "status": status, "resolved_at": now}
            elif action == "escalate":
                status = "escalated"
                changes = {"status": status}
            if changes:
                conn.execute(update(items).where(items.c.id == item_id).values(**changes))
            row = {"item_id": item_id, "reviewer": reviewer, "role": role, "action": action,
                   "old_label": current.label, "new_label": label, "old_status": current.status,
                   "new_status": status, "at": now, "note": note}
            row = {"id": conn.execute(insert(events).values(**row)).inserted_primary_key[0], **row}
        return row

    def events(self, item_id: str | None = None) -> list[dict]:
        """Logged actions in order, of one item or of all."""
        with self.engine.connect() as conn:
            return self._events(conn, item_id)

    @staticmethod
    def _events(conn: Connection, item_id: str | None) -> list[dict]:
        query = select(events).order_by(events.c.id)
        if item_id is not None:
            query = query.where(events.c.item_id == item_id)
        return [dict(row) for row in conn.execute(query).mappings()]

    def _labels_by_reviewer(self) -> dict[str, dict[str, str]]:
        """item -> reviewer -> their latest label, reviewers in the order of their first label."""
        query = (select(events.c.item_id, events.c.reviewer, events.c.new_label)
                 .where(events.c.action.in_(LABELLING)).order_by(events.c.id))
        found: dict[str, dict[str, str]] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                found.setdefault(row.item_id, {})[row.reviewer] = row.new_label
        return found

    def agreement(self) -> dict:
        """Cohen's kappa between the first two reviewers (by first label) of every item two reviewers labelled,
        each with their latest label: {'items' (labelled by two or more), 'pairs' (label pairs compared, one per
        item), 'kappa' (None while undefined), 'observed' (share of pairs agreeing), 'labelled' (by anyone)}."""
        labelled = self._labels_by_reviewer()
        pairs = [tuple(labels[name] for name in list(labels)[:2]) for labels in labelled.values() if len(labels) >= 2]
        first, second = [a for a, _ in pairs], [b for _, b in pairs]
        kappa = None
        if len(set(first) | set(second)) >= 2:  # one class throughout leaves kappa undefined
            from sklearn.metrics import cohen_kappa_score
            value = float(cohen_kappa_score(first, second))
            kappa = value if math.isfinite(value) else None
        observed = sum(a == b for a, b in pairs) / len(pairs) if pairs else None
        return {"items": len(pairs), "pairs": len(pairs), "kappa": kappa, "observed": observed,
                "labelled": len(labelled)}

    def reviewed(self) -> list[dict]:
        """Resolved, labelled items by id: {'id', 'label', 'text', 'media_type', 'reviewers', 'resolved_at'}."""
        query = (select(items.c.id, items.c.label, items.c.text, items.c.media_type, items.c.resolved_at)
                 .where(items.c.status == "resolved", items.c.label.is_not(None)).order_by(items.c.id))
        with self.engine.connect() as conn:
            rows = [dict(row) for row in conn.execute(query).mappings()]
        labelled = self._labels_by_reviewer()
        for row in rows:
            row["reviewers"] = list(labelled.get(row["id"], {}))
        return rows

    def counts(self) -> dict:
        """Items per status (every status, zeros included)."""
        query = select(items.c.status, func.count()).group_by(items.c.status)
        with self.engine.connect() as conn:
            found = dict(conn.execute(query).all())
        return {status: int(found.get(status, 0)) for status in STATUSES}
