"""People who sign in: agents and managers, tied to their Aircall and Salesforce users by email.

Passwords are hashed with argon2id (argon2-cffi's defaults follow RFC 9106). An unknown email
costs one hash verification too, so timing does not tell which emails have an account.
"""

from __future__ import annotations

import functools
import secrets
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, select

from integrations.errors import BadInput
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


def get_user(engine: Engine, user_id: int) -> User | None:
    with Session(engine, expire_on_commit=False) as s:
        return s.get(User, user_id)


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
