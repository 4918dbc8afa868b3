"""The emulator's world: users, tokens, cases, studies, series and uploads, in memory.

Everything is plain dataclasses so that one generic pair of functions can save the world to JSON
(``--state FILE``) and read it back; handlers in the other modules own the rules.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from casesync.emulator.blobs import BlobStore
from casesync.emulator.config import DEMO_LOGIN, EmulatorConfig
from casesync.errors import ConfigError
from casesync.fsutil import atomic_write, read_regular

FORMAT_VERSION = 1
FIRST_CASE_ID = 100001


def iso(ts: float) -> str:
    """Rails' JSON time format: ISO-8601, milliseconds, ``Z``."""
    moment = datetime.fromtimestamp(ts, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class User:
    id: int
    login: str
    allowed_draft_cases: int | None


@dataclass
class Token:
    access_token: str
    refresh_token: str
    user_id: int
    created_at: int
    expires_in: int
    expires_at: float


@dataclass
class Grant:
    """An authorization code: single use, bound to its redirect URI."""

    code: str
    user_id: int
    redirect_uri: str
    expires_at: float


@dataclass
class Case:
    id: int
    author_id: int
    title: str
    system_id: Any  # kept for tests; the real server ignores it (protocol.md, row 2)
    diagnostic_certainty_id: Any
    suitable_for_quiz: Any
    presentation: Any
    age: Any
    gender: Any
    body: Any
    created_at: float
    updated_at: float
    status: str = "draft"
    visibility: str = "public"
    upload_finished: bool = False
    mark_upload_finished_calls: int = 0
    deleted: bool = False
    study_ids: list[int] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        """What the API shows of a case (rows 2 and 3)."""
        return {
            "id": self.id,
            "title": self.title,
            "author_id": self.author_id,
            "status": self.status,
            "visibility": self.visibility,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


@dataclass
class Study:
    id: int
    case_id: int
    modality: Any
    findings: Any
    caption: Any
    position: Any
    created_at: float
    updated_at: float
    job_ids: list[str] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "case_id": self.case_id,
            "modality": self.modality,
            "findings": self.findings,
            "caption": self.caption,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


@dataclass
class Series:
    job_id: str
    series_id: int
    case_id: int
    study_id: int
    root_index: int
    perspective: Any
    specifics: Any
    image_format: str
    upload_ids: list[int]
    sha256s: list[str]
    created_at: float
    ready_at: float
    failed: bool = False


@dataclass
class Upload:
    id: int
    user_id: int
    sha256: str
    status: str  # "url_issued" or "already_uploaded"
    issued_at: float
    expires_at: float | None = None
    puts: int = 0
    content_type: str | None = None


_T = TypeVar("_T")


def _rebuild(cls: type[_T], rows: list[dict[str, Any]]) -> list[_T]:
    return [cls(**row) for row in rows]


class State:
    """All entities, their id counters, and the clock every expiry is measured against."""

    def __init__(self, config: EmulatorConfig, blobs: BlobStore) -> None:
        self.config = config
        self.blobs = blobs
        self.anonymiser_verdicts: dict[str, str | None] = {}  # by sha256; bytes never change
        self.clock_offset = 0.0
        self.signing_key = secrets.token_hex(32)
        self.users: dict[int, User] = {}
        self.tokens: dict[str, Token] = {}  # by access token
        self.refresh_index: dict[str, str] = {}  # refresh token -> access token
        self.grants: dict[str, Grant] = {}
        self.cases: dict[int, Case] = {}
        self.studies: dict[int, Study] = {}
        self.series: dict[str, Series] = {}  # by job id
        self.uploads: dict[int, Upload] = {}
        self.counters: dict[str, int] = {
            "user": 1,
            "case": FIRST_CASE_ID,
            "study": 500001,
            "series": 700001,
            "upload": 900001,
            "image": 300001,
        }
        self.requests: Counter[str] = Counter()
        self.in_flight = 0  # API requests received and not yet answered (the server is busy)
        self.faults: list[dict[str, Any]] = []
        self.dirty = False
        self.demo_user = self.add_user(DEMO_LOGIN)

    def now(self) -> float:
        """Wall time plus the offset tests add with ``POST /_emulator/clock``."""
        return time.time() + self.clock_offset

    def next_id(self, kind: str) -> int:
        value = self.counters[kind]
        self.counters[kind] = value + 1
        return value

    def add_user(self, login: str) -> User:
        for user in self.users.values():
            if user.login == login:
                return user
        user = User(self.next_id("user"), login, self.config.draft_quota)
        self.users[user.id] = user
        self.dirty = True
        return user

    # --- tokens ---

    def issue_token(self, user_id: int, ttl: int | None = None) -> Token:
        now = self.now()
        lifetime = self.config.token_ttl if ttl is None else ttl
        token = Token(
            access_token=secrets.token_urlsafe(32),
            refresh_token=secrets.token_urlsafe(32),
            user_id=user_id,
            created_at=int(now),
            expires_in=lifetime,
            expires_at=now + lifetime,
        )
        self.tokens[token.access_token] = token
        self.refresh_index[token.refresh_token] = token.access_token
        self.dirty = True
        return token

    def revoke(self, token: Token) -> None:
        """Kill an access/refresh pair at once (rotation)."""
        self.tokens.pop(token.access_token, None)
        self.refresh_index.pop(token.refresh_token, None)
        self.dirty = True

    def user_for_access_token(self, access_token: str) -> tuple[User | None, str]:
        token = self.tokens.get(access_token)
        if token is None:
            return None, "The access token is invalid"
        if token.expires_at <= self.now():
            return None, "The access token expired"
        return self.users[token.user_id], ""

    def new_grant(self, user_id: int, redirect_uri: str) -> Grant:
        grant = Grant(secrets.token_urlsafe(24), user_id, redirect_uri, self.now() + 600)
        self.grants[grant.code] = grant
        self.dirty = True
        return grant

    # --- cases ---

    def live_cases(self, user_id: int) -> list[Case]:
        return [c for c in self.cases.values() if c.author_id == user_id and not c.deleted]

    def quotas(self, user: User) -> dict[str, Any]:
        cases = self.live_cases(user.id)
        return {
            "allowed_draft_cases": user.allowed_draft_cases,
            "allowed_unlisted_cases": None,
            "allowed_unlisted_playlists": 10,
            "draft_case_count": sum(c.status == "draft" for c in cases),
            "unlisted_case_count": sum(c.visibility == "unlisted" for c in cases),
            "unlisted_playlist_count": 0,
        }

    def owned_case(self, user: User, case_id: str) -> Case | None:
        """The caller's live case with this id (from a URL), or None."""
        case = self.cases.get(int(case_id)) if case_id.isdigit() else None
        if case is None or case.deleted or case.author_id != user.id:
            return None
        return case

    def study_of(self, case: Case, study_id: str) -> Study | None:
        study = self.studies.get(int(study_id)) if study_id.isdigit() else None
        return study if study is not None and study.case_id == case.id else None

    # --- persistence ---

    def dump(self) -> dict[str, Any]:
        """Everything needed to restart where we left off (secrets included)."""
        return {
            "format": FORMAT_VERSION,
            "signing_key": self.signing_key,
            "clock_offset": self.clock_offset,
            "counters": self.counters,
            "users": [dataclasses.asdict(u) for u in self.users.values()],
            "tokens": [dataclasses.asdict(t) for t in self.tokens.values()],
            "cases": [dataclasses.asdict(c) for c in self.cases.values()],
            "studies": [dataclasses.asdict(s) for s in self.studies.values()],
            "series": [dataclasses.asdict(s) for s in self.series.values()],
            "uploads": [dataclasses.asdict(u) for u in self.uploads.values()],
        }

    def load(self, data: dict[str, Any]) -> None:
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"unsupported emulator state format {data.get('format')!r}")
        self.signing_key = data["signing_key"]
        self.clock_offset = float(data["clock_offset"])
        self.counters.update(data["counters"])
        self.users = {u.id: u for u in _rebuild(User, data["users"])}
        for user in self.users.values():  # this run's --draft-quota wins over the saved one
            user.allowed_draft_cases = self.config.draft_quota
        self.demo_user = self.add_user(DEMO_LOGIN)
        self.tokens = {t.access_token: t for t in _rebuild(Token, data["tokens"])}
        self.refresh_index = {t.refresh_token: t.access_token for t in self.tokens.values()}
        self.cases = {c.id: c for c in _rebuild(Case, data["cases"])}
        self.studies = {s.id: s for s in _rebuild(Study, data["studies"])}
        self.series = {s.job_id: s for s in _rebuild(Series, data["series"])}
        self.uploads = {u.id: u for u in _rebuild(Upload, data["uploads"])}
        self.dirty = False


STATE = web.AppKey("casesync_emulator_state", State)


def read_state_file(state: State, path: Path) -> None:
    """Load ``path`` into ``state`` if it exists (a first run starts empty)."""
    if not path.exists():
        return
    try:
        state.load(json.loads(read_regular(path, None)))
    except json.JSONDecodeError as exc:
        raise _unusable(path, f"not JSON: line {exc.lineno}") from None
    except OSError as exc:
        raise _unusable(path, f"cannot be read: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise _unusable(
            path, f"not a state file this emulator wrote ({type(exc).__name__})"
        ) from None


def _unusable(path: Path, why: str) -> ConfigError:
    return ConfigError(
        f"emulator state file {path}: {why}",
        hint="move it away to start empty, or pass another --state FILE",
    )


def write_state_file(path: Path, text: str) -> None:
    """Atomic replace, so a crash mid-write never leaves half a state file."""
    atomic_write(path, text)
