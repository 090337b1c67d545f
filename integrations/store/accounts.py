"""People who sign in: agents and managers, tied to their Aircall and Salesforce users by email.

Passwords are hashed with argon2id (argon2-cffi's defaults follow RFC 9106). An unknown email
costs one hash verification too, so timing does not tell which emails have an account.

Failed sign-ins are limited per email and per client address (``sign_in``), counted in the
database so every web process shares them. An email with no account is limited exactly as one
with an account: the answer never tells which emails exist.
"""

from __future__ import annotations

import functools
import hashlib
import math
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import ColumnElement, Engine, Index, delete, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, col, select

from integrations.errors import BadInput, CallbridgeError
from integrations.settings import Settings
from integrations.store.db import insert_ignore

AGENT, MANAGER = "agent", "manager"
ROLES = (AGENT, MANAGER)
MIN_PASSWORD = 10

_hasher = PasswordHasher()


class User(SQLModel, table=True):
    """An account. An agent's email is the one of their Aircall user and Salesforce User."""

    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True)
    role: str = Field(max_length=10)
    password_hash: str = Field(max_length=255)
    created_at: float

    @property
    def is_manager(self) -> bool:
        return self.role == MANAGER


class AppSecret(SQLModel, table=True):
    """Secrets Callbridge makes for itself, shared by every process using the same database."""

    __tablename__ = "app_secrets"

    name: str = Field(primary_key=True, max_length=40)
    value: str = Field(max_length=255)


def normalise_email(email: str) -> str:
    """The email as stored and compared (calls index the agent's email the same way)."""
    value = email.strip().lower()
    local, at, domain = value.partition("@")
    if not (at and local and "." in domain and len(value) <= 254 and value.isprintable()):
        raise BadInput(f"not an email address: {email!r}")
    if any(char.isspace() for char in value):
        raise BadInput(f"not an email address: {email!r}")
    return value


def add_user(engine: Engine, email: str, role: str, password: str) -> User:
    """Create an account; a second account with the same email is refused."""
    address = normalise_email(email)
    if role not in ROLES:
        raise BadInput(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if len(password) < MIN_PASSWORD:
        raise BadInput(f"the password must be at least {MIN_PASSWORD} characters long")
    user = User(
        email=address, role=role, password_hash=_hasher.hash(password), created_at=time.time()
    )
    with Session(engine, expire_on_commit=False) as s:
        s.add(user)
        try:
            s.commit()
        except IntegrityError:
            raise BadInput(f"a user with the email {address} already exists") from None
    return user


@functools.cache
def _decoy_hash() -> str:
    return _hasher.hash(secrets.token_hex(16))


def authenticate(engine: Engine, email: str, password: str) -> User | None:
    """The account for this email and password, or None (which of the two was wrong is not said)."""
    try:
        address = normalise_email(email)
    except BadInput:
        address = None
    user = None
    if address is not None:
        with Session(engine, expire_on_commit=False) as s:
            user = s.exec(select(User).where(User.email == address)).first()
    try:
        _hasher.verify(user.password_hash if user else _decoy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        with Session(engine, expire_on_commit=False) as s:
            user.password_hash = _hasher.hash(password)
            s.add(user)
            s.commit()
    return user


# -- failed sign-ins ---------------------------------------------------------------------------


class SignInAttempt(SQLModel, table=True):
    """A sign-in not (yet) known to have succeeded: written before the password is checked, so
    parallel guesses count too, and deleted with the email's others when one succeeds."""

    __tablename__ = "sign_in_attempts"
    __table_args__ = (
        Index("ix_sign_in_attempts_email", "email_key", "at"),
        Index("ix_sign_in_attempts_ip", "ip", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    # sha256 of the email as typed (normalised when valid): a password typed in the email field
    # is not kept readable, and any length fits.
    email_key: str = Field(max_length=64)
    ip: str = Field(max_length=64)
    at: float


class TooManyFailures(CallbridgeError):
    """Too many failed sign-ins for this email or from this address; ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        minutes = math.ceil(retry_after / 60)
        super().__init__(
            "Too many failed sign-ins for this email or from this address. "
            f"Try again in {minutes} minute{'s' if minutes != 1 else ''}."
        )


@dataclass(frozen=True)
class SignInLimits:
    """Failures allowed per email and per address within ``window`` seconds (0: no limit)."""

    per_email: int = 5
    per_ip: int = 20
    window: float = 900.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SignInLimits:
        return cls(
            per_email=settings.sign_in_failures_per_email,
            per_ip=settings.sign_in_failures_per_ip,
            window=settings.sign_in_failure_window_seconds,
        )


def _email_key(email: str) -> str:
    try:
        value = normalise_email(email)
    except BadInput:
        value = email.strip().lower()
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def sign_in(
    engine: Engine, email: str, password: str, *, ip: str, limits: SignInLimits
) -> User | None:
    """``authenticate``, limited: raises ``TooManyFailures`` (without checking the password) when
    the email or the address has ``limits`` failures within the window."""
    attempt = SignInAttempt(email_key=_email_key(email), ip=ip[:64], at=time.time())
    with Session(engine, expire_on_commit=False) as s:
        s.execute(delete(SignInAttempt).where(col(SignInAttempt.at) < attempt.at - limits.window))
        s.add(attempt)
        s.commit()  # before counting: parallel attempts each see the ones committed before them
    wait = _wait(engine, attempt, limits)
    if wait is not None:
        _forget(engine, SignInAttempt.id == attempt.id)  # a refused attempt is not a failure
        raise TooManyFailures(wait)
    user = authenticate(engine, email, password)
    if user is not None:
        _forget(engine, SignInAttempt.email_key == attempt.email_key)
    return user


def _wait(engine: Engine, attempt: SignInAttempt, limits: SignInLimits) -> int | None:
    """Seconds until ``attempt`` would be within the limits, or None when it is now."""
    since = attempt.at - limits.window
    waits = []
    with Session(engine) as s:
        for column, value, limit in (
            (SignInAttempt.email_key, attempt.email_key, limits.per_email),
            (SignInAttempt.ip, attempt.ip, limits.per_ip),
        ):
            if limit <= 0:
                continue
            earlier = s.exec(
                select(SignInAttempt.at)
                .where(column == value, SignInAttempt.at > since, SignInAttempt.id != attempt.id)
                .order_by(col(SignInAttempt.at))
            ).all()
            excess = len(earlier) - limit + 1  # how many must leave the window first
            if excess > 0:
                waits.append(earlier[excess - 1] + limits.window - attempt.at)
    return max(1, math.ceil(max(waits))) if waits else None


def _forget(engine: Engine, condition: ColumnElement[bool]) -> None:
    with Session(engine) as s:
        s.execute(delete(SignInAttempt).where(condition))
        s.commit()


# -- browser sessions ----------------------------------------------------------------------------


class BrowserSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random id; only its sha256 is stored, so the
    table does not hand out sessions. Deleting the row ends the session at once, wherever the
    cookie has been copied to."""

    __tablename__ = "browser_sessions"

    key: str = Field(primary_key=True, max_length=64)  # sha256 of the cookie's id
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    created_at: float


def _session_key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


def start_session(engine: Engine, user: User, max_age: float) -> str:
    """A new session for ``user``: the id for the cookie (expired sessions are cleared too)."""
    session_id = secrets.token_urlsafe(32)
    now = time.time()
    with Session(engine) as s:
        s.execute(delete(BrowserSession).where(col(BrowserSession.created_at) < now - max_age))
        s.add(BrowserSession(key=_session_key(session_id), user_id=user.id, created_at=now))
        s.commit()
    return session_id


def session_user(engine: Engine, session_id: str, max_age: float) -> User | None:
    """The user of a live session, or None (ended, expired, or the account deleted)."""
    with Session(engine, expire_on_commit=False) as s:
        return s.exec(
            select(User)
            .join(BrowserSession, col(BrowserSession.user_id) == col(User.id))
            .where(
                BrowserSession.key == _session_key(session_id),
                BrowserSession.created_at >= time.time() - max_age,
            )
        ).first()


def end_session(engine: Engine, session_id: str) -> None:
    with Session(engine) as s:
        s.execute(delete(BrowserSession).where(BrowserSession.key == _session_key(session_id)))
        s.commit()


def end_sessions(engine: Engine, email: str) -> int:
    """Sign the user out everywhere; how many sessions ended. ``BadInput`` for no such user."""
    user = _user_by_email(engine, email)
    with Session(engine) as s:
        ended = s.execute(delete(BrowserSession).where(BrowserSession.user_id == user.id))
        s.commit()
    return ended.rowcount


def set_password(engine: Engine, email: str, password: str) -> User:
    """A new password, and every session of the user ended (a stolen cookie too)."""
    if len(password) < MIN_PASSWORD:
        raise BadInput(f"the password must be at least {MIN_PASSWORD} characters long")
    user = _user_by_email(engine, email)
    with Session(engine, expire_on_commit=False) as s:
        user.password_hash = _hasher.hash(password)
        s.add(user)
        s.execute(delete(BrowserSession).where(BrowserSession.user_id == user.id))
        s.commit()
    return user


def _user_by_email(engine: Engine, email: str) -> User:
    address = normalise_email(email)
    with Session(engine, expire_on_commit=False) as s:
        user = s.exec(select(User).where(User.email == address)).first()
    if user is None:
        raise BadInput(f"no user with the email {address}")
    return user


def count_users(engine: Engine) -> int:
    with Session(engine) as s:
        return s.exec(select(func.count()).select_from(User)).one()


def session_secret(engine: Engine, configured: str) -> str:
    """The key that signs session cookies: ``SESSION_SECRET``, else one made once and stored."""
    if configured:
        return configured
    with Session(engine) as s:
        s.execute(
            insert_ignore(
                engine, AppSecret.__table__, {"name": "session", "value": secrets.token_urlsafe(48)}
            )
        )
        s.commit()
        return s.exec(select(AppSecret.value).where(AppSecret.name == "session")).one()
