"""Reviewer tokens and review-page sessions.

The reviewers file (params serve.reviewers_file) holds [{"name", "role", "token_sha256"}]: tokens are never stored
in clear. Env MODERATION_REVIEWERS adds entries as `name:role:token,...`. A session is a cookie signed with
HMAC-SHA256 over "name|role|expiry"; the key is env MODERATION_SESSION_SECRET, or random per process (then a
restart logs everyone out, and several worker processes need the env secret).

Examples:
  python -m Step_7.auth add alice --role reviewer    # prints alice's token once
  python -m Step_7.auth add bob --role viewer --file data/reviews/reviewers.json
  python -m Step_7.auth list
  python -m Step_7.auth remove alice
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from core.cli import run_cli
from core.errors import PipelineError
from core.files import read_json, write_json
from core.params import PARAMS_FILE, section
from Step_7.config import ServeConfig

ROLES = ("reviewer", "viewer")
COOKIE = "review_session"
ENV_REVIEWERS = "MODERATION_REVIEWERS"
ENV_SECRET = "MODERATION_SESSION_SECRET"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


@dataclass(frozen=True)
class Reviewer:
    """A logged-in person: name and role ('reviewer' labels, 'viewer' only looks)."""

    name: str
    role: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_entry(name: str, role: str, where: str) -> None:
    if not NAME.fullmatch(name):
        raise PipelineError(f"{where}: reviewer name {name!r} must be 1-64 letters, digits or _ . @ - "
                            "(starting with a letter or digit)")
    if role not in ROLES:
        raise PipelineError(f"{where}: role of {name!r} must be one of {', '.join(ROLES)}, got {role!r}")


def read_entries(path: str | Path) -> list[dict]:
    """The reviewers file's entries ([] when it does not exist yet)."""
    path = Path(path)
    if not path.is_file():
        return []
    entries = read_json(path)
    if not isinstance(entries, list) or not all(isinstance(e, dict) and {"name", "role", "token_sha256"} <= set(e)
                                                for e in entries):
        raise PipelineError(f"{path} must be a JSON list of {{name, role, token_sha256}}: fix it or delete it and "
                            "add reviewers again (python -m Step_7.auth add NAME)")
    for entry in entries:
        check_entry(entry["name"], entry["role"], str(path))
    return entries


def env_entries(value: str) -> list[dict]:
    """Entries from MODERATION_REVIEWERS (`name:role:token,...`), tokens hashed."""
    entries = []
    for part in filter(None, (p.strip() for p in value.split(","))):
        fields = part.split(":", 2)
        if len(fields) != 3 or not fields[2]:
            raise PipelineError(f"{ENV_REVIEWERS}: entry {fields[0]!r}... must read name:role:token")
        check_entry(fields[0], fields[1], ENV_REVIEWERS)
        entries.append({"name": fields[0], "role": fields[1], "token_sha256": hash_token(fields[2])})
    return entries


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


class Reviewers:
    """Who may log in; checks tokens and signs and reads session cookies."""

    def __init__(self, entries: list[dict], *, secret: bytes | str | None = None):
        self.entries = [(e["token_sha256"], Reviewer(e["name"], e["role"])) for e in entries]
        secret = secret or os.environ.get(ENV_SECRET) or secrets.token_bytes(32)
        self.secret = secret.encode("utf-8") if isinstance(secret, str) else secret

    @classmethod
    def load(cls, path: str | Path, *, secret: bytes | str | None = None) -> Reviewers:
        """The reviewers file plus env MODERATION_REVIEWERS."""
        return cls(read_entries(path) + env_entries(os.environ.get(ENV_REVIEWERS, "")), secret=secret)

    def login(self, token: str) -> Reviewer | None:
        """The reviewer a token belongs to, or None."""
        digest, found = hash_token(token), None
        for stored, who in self.entries:  # every entry compared, in constant time each
            if hmac.compare_digest(stored, digest):
                found = who
        return found

    def _sign(self, payload: str) -> str:
        return hmac.new(self.secret, payload.encode("utf-8"), hashlib.sha256).hexdigest()

    def _stamp(self, who: Reviewer) -> str:
        """A short digest of who's current token: a replaced token ends every session issued for the old one."""
        return next((digest[:16] for digest, listed in self.entries if listed == who), "")

    def issue(self, who: Reviewer, hours: float, now: float | None = None) -> str:
        """A session cookie value for `who`, valid for `hours`."""
        expiry = int((time.time() if now is None else now) + hours * 3600)
        payload = f"{who.name}|{who.role}|{expiry}|{self._stamp(who)}"
        return f"{_b64(payload.encode('utf-8'))}.{self._sign(payload)}"

    def session(self, cookie: str | None, now: float | None = None) -> Reviewer | None:
        """The reviewer of a valid, unexpired cookie issued for a token still listed, else None."""
        if not cookie or "." not in cookie or not cookie.isascii():
            return None
        encoded, signature = cookie.rsplit(".", 1)
        try:
            payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
            name, role, expiry, stamp = payload.split("|")
            expired = int(expiry) <= (time.time() if now is None else now)
        except (ValueError, TypeError):
            return None
        if not hmac.compare_digest(self._sign(payload), signature) or expired:
            return None
        who = Reviewer(name, role)
        return who if any(who == listed and digest[:16] == stamp for digest, listed in self.entries) else None


def reviewers_file(args: argparse.Namespace) -> Path:
    return Path(args.file or section(ServeConfig, "serve", args.params).reviewers_file)


def add(args: argparse.Namespace) -> None:
    path = reviewers_file(args)
    check_entry(args.name, args.role, "add")
    entries = read_entries(path)
    if any(e["name"] == args.name for e in entries):
        raise PipelineError(f"reviewer {args.name!r} is already in {path}: to issue a new token, remove it first "
                            f"(python -m Step_7.auth remove {args.name})")
    token = secrets.token_urlsafe(24)
    write_json(path, entries + [{"name": args.name, "role": args.role, "token_sha256": hash_token(token)}])
    print(f"added {args.name} ({args.role}) to {path}; their token, shown only this once:")
    print(token)


def list_entries(args: argparse.Namespace) -> None:
    path = reviewers_file(args)
    entries = read_entries(path)
    if not entries:
        print(f"no reviewers in {path} (python -m Step_7.auth add NAME --role reviewer)")
    for entry in entries:
        print(f"{entry['name']}\t{entry['role']}")


def remove(args: argparse.Namespace) -> None:
    path = reviewers_file(args)
    entries = read_entries(path)
    kept = [e for e in entries if e["name"] != args.name]
    if len(kept) == len(entries):
        names = ", ".join(e["name"] for e in entries) or "none"
        raise PipelineError(f"no reviewer {args.name!r} in {path} (listed: {names})")
    write_json(path, kept)
    print(f"removed {args.name} from {path}; restart the service to end their open sessions")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m Step_7.auth", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="command", required=True)
    specs = {"add": (add, "add a reviewer and print their new token once"),
             "list": (list_entries, "list reviewers and their roles"),
             "remove": (remove, "remove a reviewer (their token stops working)")}
    for name, (run, text) in specs.items():
        sub = commands.add_parser(name, help=text, description=text)
        sub.set_defaults(run=run)
        sub.add_argument("--file", default=None, help="reviewers file (default: params serve.reviewers_file)")
        sub.add_argument("--params", default=PARAMS_FILE, help="params file (its serve section)")
        if name != "list":
            sub.add_argument("name", help="the reviewer's name (letters, digits, _ . @ -)")
        if name == "add":
            sub.add_argument("--role", choices=ROLES, default="reviewer", help="reviewer labels; viewer only looks")
    return top


def main() -> None:
    args = parser().parse_args()
    args.run(args)


if __name__ == "__main__":
    run_cli(main)
