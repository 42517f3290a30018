"""auth's rules: logins and their throttle, token pairs, profiles, clients, operators and the
password links. Plain functions over a pool; handlers call them, `store` holds the SQL."""

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from services.auth import models, store
from services.auth.keys import KeyStore
from services.auth.passwords import Hasher, weakness
from services.auth.sealing_key import SealingKey
from services.auth.settings import AuthSettings
from services.auth.tokens import new_secret_token, token_hash
from shared import events, sealing
from shared.auth import Principal
from shared.db import acquire
from shared.errors import (
    BadRequest,
    Conflict,
    NotFound,
    ProblemError,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
)
from shared.unit_of_work import UnitOfWork, unit_of_work


@dataclass(frozen=True)
class Deps:
    """What the rules need besides the pool."""

    settings: AuthSettings
    hasher: Hasher
    keys: KeyStore
    sealing_key: SealingKey


@dataclass(frozen=True)
class Account:
    sub: str
    role: str
    name: str
    password_hash: str | None


def normalize_username(username: str) -> str:
    """One spelling per account, so the login throttle counts every spelling of it together:
    emails in lower case, client numbers without leading zeros ("0100001" is 100001)."""
    username = username.strip().lower()
    if username.isascii() and username.isdigit():
        username = username.lstrip("0") or "0"
    return username


async def find_account(conn: asyncpg.Connection, username: str) -> Account | None:
    """A client number (digits) or an operator's email; None for a disabled account too, so
    that it is answered exactly as an unknown user."""
    if username.isascii() and username.isdigit() and len(username) <= 18:
        row = await store.get_client(conn, int(username))
        return _usable(row) and Account(
            f"client:{row['client_number']}", "client", row["name"], row["password_hash"]
        )
    if "@" in username:
        row = await store.get_operator_by_email(conn, username)
        return _usable(row) and Account(
            f"operator:{row['id']}", row["role"], row["name"], row["password_hash"]
        )
    return None


async def account_of(conn: asyncpg.Connection, sub: str) -> Account | None:
    """The account a token names; None when it is gone or disabled."""
    kind, _, ident = sub.partition(":")
    if kind == "client":
        row = await store.get_client(conn, int(ident))
        return _usable(row) and Account(sub, "client", row["name"], row["password_hash"])
    row = await store.get_operator(conn, int(ident))
    return _usable(row) and Account(sub, row["role"], row["name"], row["password_hash"])


def _usable(row: asyncpg.Record | None) -> asyncpg.Record | None:
    return row if row is not None and not row["disabled"] else None


def check_password(password: str, *context: str, field: str = "password") -> None:
    """422 naming `field`, the request's member that holds the refused password."""
    reason = weakness(password, context)
    if reason:
        raise ValidationFailed(reason, [{"field": field, "message": reason}])


async def _issue_pair(
    conn: asyncpg.Connection, deps: Deps, account: Account, family: uuid.UUID | None = None
) -> models.TokenPair:
    refresh = new_secret_token()
    await store.insert_refresh_token(
        conn,
        token_hash=token_hash(refresh),
        family_id=family or uuid.uuid4(),
        subject=account.sub,
        ttl=deps.settings.refresh_token_ttl,
    )
    ttl = deps.settings.access_token_ttl
    access = deps.keys.ring.issue(sub=account.sub, role=account.role, name=account.name, ttl=ttl)
    return models.TokenPair(access_token=access, expires_in=ttl, refresh_token=refresh)


# The window of the cap on email changes (AuthSettings.email_change_max_per_day).
DAY = 86_400


def _seconds_until(moment: datetime) -> int:
    return max(1, math.ceil((moment - datetime.now(UTC)).total_seconds()))


async def _count_attempt(
    conn: asyncpg.Connection, s: AuthSettings, username: str, address: str
) -> int:
    """429 when `username` is throttled from `address`; else the attempt is counted as a
    failure before the password is checked, so that guesses sent at once cannot pass the
    throttle while their hashes are computed (a success clears it: `_forgive`; a failure
    settles it: `_settle`). The attempt's id."""
    await store.lock_login(conn, username, address)
    limits = (
        await store.throttled_until(conn, username, address, s.login_window, s.login_max_failures),
        await store.throttled_until(
            conn, username, None, s.login_username_window, s.login_username_max_failures
        ),
        await store.address_throttled_until(
            conn, address, s.login_address_window, s.login_address_max_usernames
        ),
    )
    until = max((u for u in limits if u is not None), default=None)
    if until is not None:
        raise TooManyRequests(
            "Too many failed logins; try again later.", retry_after=_seconds_until(until)
        )
    return await store.record_attempt(conn, username, address, _failures_kept(s))


def _failures_kept(s: AuthSettings) -> int:
    """Seconds a login failure counts in some window: the longest window."""
    return max(s.login_window, s.login_username_window, s.login_address_window)


# Spent and expired tokens are kept this long (SPEC 9.1: a day), then purged.
SPENT_KEPT = 86_400


async def purge_spent(pool: asyncpg.Pool, settings: AuthSettings) -> int:
    async with acquire(pool) as conn:
        return await store.purge_spent(conn, SPENT_KEPT, _failures_kept(settings))


async def _settle(pool: asyncpg.Pool, attempt: int) -> None:
    async with unit_of_work(pool) as work:
        await store.settle_failure(work.conn, attempt)


async def _check_current_password(
    pool: asyncpg.Pool, deps: Deps, principal: Principal, password: str, address: str
) -> None:
    """400 unless `password` is the account's current one. A wrong one counts towards the
    login throttle of the account from `address`, as a failed login does: else a stolen
    session could guess the password here. A right one is forgiven at once, whatever the
    request does next (a refused new password must not count as a failed login)."""
    async with unit_of_work(pool) as work:
        conn = work.conn
        name = (
            principal.account_id if principal.kind == "client" else await _email_of(conn, principal)
        )
        username = normalize_username(name)
        attempt = await _count_attempt(conn, deps.settings, username, address)
        account = await account_of(conn, principal.sub)
    if account is None or not await deps.hasher.verify(account.password_hash, password):
        await _settle(pool, attempt)
        raise BadRequest("The current password is wrong.")
    async with unit_of_work(pool) as work:
        await _forgive(work.conn, username, address)


async def _forgive(conn: asyncpg.Connection, username: str, address: str) -> None:
    """The right password: the failures of this username from this address are forgotten
    (those from elsewhere still count)."""
    await store.clear_failures(conn, username, address)


async def login(
    pool: asyncpg.Pool, deps: Deps, username: str, password: str, address: str
) -> models.TokenPair:
    """401 alike for an unknown user and a wrong password; 429 once throttled, even when right."""
    username = normalize_username(username)
    async with unit_of_work(pool) as work:
        attempt = await _count_attempt(work.conn, deps.settings, username, address)
        account = await find_account(work.conn, username)
    # No connection or lock is held while Argon2 works (and perhaps waits for its turn). An
    # unknown user is checked against a dummy hash: the same work, the same time.
    if not await deps.hasher.verify(account.password_hash if account else None, password):
        await _settle(pool, attempt)
        raise Unauthorized("Wrong username or password.")
    assert account is not None and account.password_hash is not None
    new_hash = None
    if deps.hasher.needs_rehash(account.password_hash):
        # Argon2's settings were raised since this hash was made: the password is at hand only
        # now, so the account moves to the new settings at its next login.
        new_hash = await deps.hasher.hash(password)
    async with unit_of_work(pool) as work:
        await _forgive(work.conn, username, address)
        if new_hash is not None:
            await _set_password(work.conn, account.sub, new_hash)
        return await _issue_pair(work.conn, deps, account)


async def refresh(pool: asyncpg.Pool, deps: Deps, refresh_token: str) -> models.TokenPair:
    """Rotation: the presented token is spent; presenting a spent one revokes its family."""
    outcome: models.TokenPair | ProblemError
    async with unit_of_work(pool) as work:
        conn = work.conn
        row = await store.claim_refresh_token(conn, token_hash(refresh_token))
        account = row and await account_of(conn, row["subject"])
        if row is None or row["revoked_at"] is not None or row["expired"] or account is None:
            outcome = Unauthorized("The refresh token is not valid.")
        elif row["used_at"] is not None:
            await store.revoke_family(conn, row["family_id"])
            outcome = Unauthorized("The refresh token was already used; sign in again.")
        else:
            await store.mark_refresh_used(conn, token_hash(refresh_token))
            outcome = await _issue_pair(conn, deps, account, row["family_id"])
    if isinstance(outcome, ProblemError):
        raise outcome
    return outcome


async def logout(pool: asyncpg.Pool, refresh_token: str) -> None:
    """Ends the login the token belongs to; an unknown token is fine (already logged out)."""
    async with unit_of_work(pool) as work:
        conn = work.conn
        row = await store.claim_refresh_token(conn, token_hash(refresh_token))
        if row is not None:
            await store.revoke_family(conn, row["family_id"])


async def _services(conn: asyncpg.Connection, number: int) -> list[models.ServiceOut]:
    return [
        models.ServiceOut(id=r["id"], name=r["name"])
        for r in await store.client_services(conn, number)
    ]


async def client_out(conn: asyncpg.Connection, number: int) -> models.ClientOut:
    row = await store.get_client(conn, number)
    if row is None:
        raise NotFound("There is no client with this number.")
    return models.ClientOut(
        client_number=str(row["client_number"]),
        name=row["name"],
        email=row["email"],
        language=row["language"],
        services=await _services(conn, number),
        disabled=row["disabled"],
        created_at=row["created_at"],
    )


async def profile(pool: asyncpg.Pool, principal: Principal) -> models.Profile:
    account_id = int(principal.account_id)
    async with acquire(pool) as conn:
        time_zone = await store.time_zone_of(conn, principal.kind, account_id)
        if principal.kind == "client":
            client = await client_out(conn, account_id)
            return models.Profile(
                kind="client",
                client_number=client.client_number,
                name=client.name,
                email=client.email,
                language=client.language,
                services=client.services,
                time_zone=time_zone,
            )
        row = await store.get_operator(conn, account_id)
    if row is None:
        raise NotFound("This account no longer exists.")
    return models.Profile(
        kind="operator",
        operator_id=row["id"],
        name=row["name"],
        email=row["email"],
        language=row["language"],
        role=row["role"],
        time_zone=time_zone,
    )


async def update_profile(
    pool: asyncpg.Pool, principal: Principal, change: models.ProfileUpdate
) -> models.Profile:
    account_id = int(principal.account_id)
    if principal.kind == "operator":
        if change.language is not None:
            message = "An operator's language is set by an admin."
            raise ValidationFailed(message, [{"field": "language", "message": message}])
        if change.time_zone is not None:
            async with unit_of_work(pool) as work:
                await store.set_time_zone(work.conn, "operator", account_id, change.time_zone)
        return await profile(pool, principal)
    number = account_id
    async with unit_of_work(pool) as work:
        conn = work.conn
        current = await store.get_client(conn, number, for_update=True)
        if current is None:
            raise NotFound("This account no longer exists.")
        if change.time_zone is not None:
            await store.set_time_zone(conn, "client", number, change.time_zone)
        if change.language is not None and change.language != current["language"]:
            await store.update_client_profile(conn, number, email=None, language=change.language)
            work.add_event(
                events.ClientUpdated(client_number=str(number), language=change.language),
                aggregate=f"client:{number}",
            )
    return await profile(pool, principal)


async def request_email_change(
    pool: asyncpg.Pool, deps: Deps, principal: Principal, body: models.EmailChange, address: str
) -> None:
    """A confirmation link to the new address and a notice to the old one; nothing changes
    until the link is used. The current password is needed, and a wrong one counts towards
    the login throttle of the account (else this route would be a way to guess passwords)."""
    number = int(principal.account_id)
    if not body.current_password:
        raise BadRequest("The current password is needed to change the email.")
    await _check_current_password(pool, deps, principal, body.current_password, address)
    sealing_key = await deps.sealing_key.current()
    async with unit_of_work(pool) as work:
        conn = work.conn
        client = await store.get_client(conn, number, for_update=True)
        if client is None:
            raise NotFound("This account no longer exists.")
        if client["email"].lower() == body.email.lower():
            message = "This is already your email."
            raise ValidationFailed(message, [{"field": "email", "message": message}])
        recent = await store.recent_email_changes(conn, number, DAY)
        if recent["count"] >= deps.settings.email_change_max_per_day:
            raise TooManyRequests(
                "Too many email changes asked for today; try again later.",
                retry_after=_seconds_until(recent["oldest"] + timedelta(seconds=DAY)),
            )
        token = new_secret_token()
        await store.insert_email_change(
            conn,
            token_hash=token_hash(token),
            client_number=number,
            new_email=body.email,
            ttl=deps.settings.email_change_token_ttl,
        )
        common = {"client_number": str(number), "name": client["name"], "new_email": body.email}
        work.add_event(
            events.EmailChangeRequested(
                **common,
                language=client["language"],
                confirm_token=sealing.seal(sealing_key, token),
            ),
            aggregate=f"client:{number}",
        )
        work.add_event(
            events.EmailChangeNotice(**common, email=client["email"], language=client["language"]),
            aggregate=f"client:{number}",
        )


async def confirm_email_change(pool: asyncpg.Pool, token: str) -> None:
    """The new email becomes the primary one and every login of the account ends (whoever
    holds the link may not be the one signed in); 400 for an unknown, used or expired token."""
    async with unit_of_work(pool) as work:
        conn = work.conn
        claimed = await store.claim_email_change(conn, token_hash(token))
        if claimed is not None:
            number, email = claimed["client_number"], claimed["new_email"]
            await store.update_client_profile(conn, number, email=email, language=None)
            await store.expire_email_changes(conn, number)
            await store.revoke_subject(conn, f"client:{number}")
            work.add_event(
                events.ClientUpdated(client_number=str(number), email=email),
                aggregate=f"client:{number}",
            )
    if claimed is None:
        raise BadRequest("This link is not valid or has expired; ask for a new one.")


async def change_password(
    pool: asyncpg.Pool, deps: Deps, principal: Principal, current: str, new: str, address: str
) -> None:
    """Needs the current password; every other login of the account ends (refresh revoked)."""
    await _check_current_password(pool, deps, principal, current, address)
    async with acquire(pool) as conn:
        email = await _email_of(conn, principal)
    check_password(new, principal.account_id, email, field="new_password")
    new_hash = await deps.hasher.hash(new)
    async with unit_of_work(pool) as work:
        conn = work.conn
        await _set_password(conn, principal.sub, new_hash)
        await store.revoke_subject(conn, principal.sub)


async def _set_password(conn: asyncpg.Connection, sub: str, password_hash: str) -> None:
    kind, _, ident = sub.partition(":")
    if kind == "client":
        await store.set_client_password(conn, int(ident), password_hash)
    else:
        await store.set_operator_password(conn, int(ident), password_hash)


async def _email_of(conn: asyncpg.Connection, principal: Principal) -> str:
    if principal.kind == "client":
        row = await store.get_client(conn, int(principal.account_id))
    else:
        row = await store.get_operator(conn, int(principal.account_id))
    return row["email"] if row else ""


async def create_client(
    pool: asyncpg.Pool, deps: Deps, new: models.ClientCreate
) -> models.ClientOut:
    """Without a password, the welcome email carries a link to set one."""
    if new.password is not None:
        check_password(new.password, new.email)
    password_hash = await deps.hasher.hash(new.password) if new.password else None
    # Learnt before the transaction: the link's token leaves auth sealed for the notifier.
    sealing_key = await deps.sealing_key.current() if password_hash is None else None
    async with unit_of_work(pool) as work:
        conn = work.conn
        row = await store.insert_client(
            conn,
            name=new.name,
            email=new.email,
            language=new.language,
            password_hash=password_hash,
        )
        number = row["client_number"]
        services = [
            models.ServiceOut(**dict(await store.insert_service(conn, number, s.name)))
            for s in new.services
        ]
        set_password_token = None
        if sealing_key is not None:
            token = await _password_link(conn, number, "welcome", deps.settings.welcome_token_ttl)
            set_password_token = sealing.seal(sealing_key, token)
        work.add_event(
            events.ClientCreated(
                client_number=str(number),
                name=new.name,
                email=new.email,
                language=new.language,
                services=[events.ServiceRef(id=s.id, name=s.name) for s in services],
                set_password_token=set_password_token,
            ),
            aggregate=f"client:{number}",
        )
        return await client_out(conn, number)


async def get_client(pool: asyncpg.Pool, number: int) -> models.ClientOut:
    async with acquire(pool) as conn:
        return await client_out(conn, number)


async def add_service(pool: asyncpg.Pool, number: int, name: str) -> models.ServiceOut:
    async with unit_of_work(pool) as work:
        conn = work.conn
        if await store.get_client(conn, number, for_update=True) is None:
            raise NotFound("There is no client with this number.")
        service = models.ServiceOut(**dict(await store.insert_service(conn, number, name)))
        services = await _services(conn, number)
        work.add_event(
            events.ClientUpdated(
                client_number=str(number),
                services=[events.ServiceRef(id=s.id, name=s.name) for s in services],
            ),
            aggregate=f"client:{number}",
        )
    return service


async def create_operator(
    pool: asyncpg.Pool, deps: Deps, new: models.OperatorCreate
) -> models.OperatorOut:
    check_password(new.password, new.email)
    password_hash = await deps.hasher.hash(new.password)
    async with unit_of_work(pool) as work:
        conn = work.conn
        row = await store.insert_operator(
            conn, email=new.email, name=new.name, role=new.role, password_hash=password_hash
        )
        if row is not None:
            work.add_event(operator_changed(row), aggregate=f"operator:{row['id']}")
    if row is None:
        raise Conflict("An operator with this email already exists.")
    return models.OperatorOut(**dict(row))


def operator_changed(row: asyncpg.Record) -> events.OperatorChanged:
    """The operator's whole state, for tickets' list of the operators it may assign to."""
    return events.OperatorChanged(
        operator_id=row["id"], name=row["name"], role=row["role"], disabled=row["disabled"]
    )


async def request_recovery(pool: asyncpg.Pool, email: str) -> None:
    """Stores the request, and nothing else: the answer (202) takes the same work and time
    whether or not the email is known, so it cannot tell which emails exist. The links are made
    by `process_recovery_requests`, within `recovery_poll_interval`: not woken by the request,
    so that their work does not fall on the requests right after a known email either."""
    async with unit_of_work(pool) as work:
        await store.insert_recovery_request(work.conn, email)


async def process_recovery_requests(pool: asyncpg.Pool, deps: Deps, batch: int = 20) -> int:
    """Every client account with a requested primary email gets its number and a one-time
    link (at most `recovery_max_per_hour` per account); the number of requests handled. The
    requests wait while the notifier's sealing key cannot be learnt (ServiceUnavailable)."""
    sealing_key = await deps.sealing_key.current()
    handled = 0
    while True:
        async with unit_of_work(pool) as work:
            conn = work.conn
            emails = await store.claim_recovery_requests(conn, batch)
            for email in emails:
                await _recover(work, deps, sealing_key, email)
        handled += len(emails)
        if len(emails) < batch:
            return handled


async def _recover(work: UnitOfWork, deps: Deps, sealing_key: str, email: str) -> None:
    conn = work.conn
    for client in await store.clients_by_email(conn, email):
        if client["disabled"]:
            continue  # its link would set a password nobody can log in with
        number = client["client_number"]
        sent = await store.recent_reset_links(conn, number, 3600)
        if sent >= deps.settings.recovery_max_per_hour:
            continue
        token = await _password_link(conn, number, "reset", deps.settings.reset_token_ttl)
        work.add_event(
            events.PasswordRecoveryRequested(
                client_number=str(number),
                email=client["email"],
                language=client["language"],
                reset_token=sealing.seal(sealing_key, token),
            ),
            aggregate=f"client:{number}",
        )


async def _password_link(conn: asyncpg.Connection, number: int, purpose: str, ttl: int) -> str:
    """A new one-time token to set the client's password, stored hashed; the token itself."""
    token = new_secret_token()
    await store.insert_password_token(
        conn, token_hash=token_hash(token), client_number=number, purpose=purpose, ttl=ttl
    )
    return token


async def reset_password(pool: asyncpg.Pool, deps: Deps, token: str, password: str) -> None:
    """400 for an unknown, used or expired token; a refused password leaves the token usable."""
    hashed_token = token_hash(token)
    async with acquire(pool) as conn:
        holder = await store.peek_password_token(conn, hashed_token)
    if holder is None:
        raise BadRequest("This link is not valid or has expired; ask for a new one.")
    check_password(password, str(holder["client_number"]), holder["email"])
    password_hash = await deps.hasher.hash(password)
    async with unit_of_work(pool) as work:
        conn = work.conn
        claimed = await store.claim_password_token(conn, hashed_token)
        if claimed is not None:
            number = claimed["client_number"]
            await store.set_client_password(conn, number, password_hash)
            await store.expire_password_tokens(conn, number)
            await store.revoke_subject(conn, f"client:{number}")
            await store.clear_failures(conn, str(number))
    if claimed is None:
        raise BadRequest("This link is not valid or has expired; ask for a new one.")


async def create_operator_command(
    pool: asyncpg.Pool, deps: Deps, *, email: str, name: str, role: str, password: str
) -> models.OperatorOut:
    """The `create-operator` command: the same rules as the admin route."""
    return await create_operator(
        pool, deps, models.OperatorCreate(email=email, name=name, role=role, password=password)
    )
