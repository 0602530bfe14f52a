"""Every setting of koomsg, read once from ``KOOMSG_*`` environment variables.

A bad value stops start-up with one line naming the variable (``ConfigError``),
because a service that starts half-configured fails later in a worse place.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

# A leaf module like this one: it imports nothing of koomsg.
from koomsg.core.netguard import Network, parse_networks

BUILTIN_TRANSPORTS = ("outbox", "smtp")


class ConfigError(Exception):
    """A configuration value that koomsg cannot run with."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    broker_url: str | None
    transport: str
    outbox_dir: Path
    smtp_url: str | None
    dns_nameservers: tuple[tuple[str, int], ...]
    public_url: str
    secret_key: str  # the newest: it encrypts and signs
    plugins: tuple[str, ...]
    # Older keys, newest first, that still decrypt and verify (see core/crypto.py).
    older_secret_keys: tuple[str, ...] = ()
    # Open and click links stop working this many days after the message was sent.
    tracking_token_days: int = 90
    # Non-public networks koomsg may still connect to for tenants (see core/netguard.py).
    allowed_private_networks: tuple[Network, ...] = ()
    max_query_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 4000
    # See schema/cost.py: rows a query may ask for, multiplied down its nesting.
    max_query_cost: int = 25_000
    # Open taskProgress subscriptions on one WebSocket connection.
    max_subscriptions_per_connection: int = 10
    # Recipient-file parses running at once, per enterprise and over the whole service.
    max_parses_per_enterprise: int = 2
    max_parses: int = 4
    max_request_bytes: int = 64 * 1024 * 1024
    dns_timeout_seconds: float = 5.0
    domain_recheck_seconds: int = 86400
    # The smtp transport: MX port for direct delivery (tests point it at loopback),
    # pool and concurrency bounds, and the connect/command/DATA timeout.
    smtp_direct_port: int = 25
    smtp_max_connections_per_host: int = 10
    smtp_max_concurrency_per_enterprise: int = 50
    smtp_timeout_seconds: float = 30.0
    # DNS targets sender domains must point at (see core/domains/records.py);
    # empty means "derived from the host of KOOMSG_PUBLIC_URL".
    spf_include: str = ""
    dmarc_target: str = ""
    tracking_target: str = ""
    mx_host: str = ""
    # The delivery pipeline (core/delivery/): messages per broker
    # message, how long a worker may hold a claimed row, how long an enqueued
    # batch may go unclaimed before it is enqueued again, and the retry
    # schedule (exponential from min to max, giving up after max age).
    batch_size: int = 500
    # Helper processes that render, fill and DKIM-sign big batches: RSA signing holds the
    # GIL, so one process cannot sign on a second core. Default 1 with the embedded broker
    # (one `koomsg serve` does everything), 0 with a real broker (scale with workers).
    build_processes: int = 0
    # A claimed row's lease: its worker renews it every third of this while it holds the
    # row (heartbeat), so it only runs out when the worker stopped.
    lease_seconds: float = 30.0
    # A row claimed this many times without an outcome (its worker died each time) ends FAILED.
    max_claims: int = 5
    # Messages one process may have handed to the transport whose outcomes are not yet
    # written: what a kill -9 can send twice.
    max_in_flight: int = 20
    redispatch_seconds: float = 120.0
    dispatch_interval_seconds: float = 0.5
    sweep_interval_seconds: float = 5.0
    retry_min_seconds: float = 300.0
    retry_max_seconds: float = 4000.0
    retry_max_age_seconds: float = 5 * 86400.0
    tracking_links: str = (
        "public"  # "public": KOOMSG_PUBLIC_URL; "domain": tracking.<sender domain>
    )
    # Statistics (core/stats/): how often hourly aggregates catch up, how far back a
    # pass looks for late commits, and how long aggregates and messages are kept.
    stats_rollup_interval_seconds: float = 30.0
    stats_rollup_skew_seconds: float = 300.0
    stats_retention_days: int = 366
    # Billing (core/billing/): the price of an email beyond packages, in cents of
    # ``currency``, and how often stale reservations are settled.
    pay_per_use_price_cents: int = 1
    currency: str = "CNY"
    billing_sweep_interval_seconds: float = 60.0
    # API rate limits (core/ratelimits/): a token bucket per enterprise, one for operators and
    # one per client address for unauthenticated requests; where the buckets live; how many
    # failed authentications an address may make per minute.
    rate_limit_rps: int = 50
    rate_limit_burst: int = 200
    rate_limit_storage: str = "memory"
    auth_failures_per_minute: int = 10
    # Introspection (__schema, __type) without an access key: off unless asked for.
    public_introspection: bool = False
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def secret_keys(self) -> tuple[str, ...]:
        """Every key, newest first: encrypt and sign with the first, accept any."""
        return (self.secret_key, *self.older_secret_keys)

    @property
    def is_embedded_broker(self) -> bool:
        return self.broker_url is None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def public_host(self) -> str:
        return urlsplit(self.public_url).hostname or "localhost"


def _url(variable: str, value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    scheme = parts.scheme.split("+")[0]
    if scheme not in schemes:
        allowed = ", ".join(f"{s}://" for s in schemes)
        raise ConfigError(
            variable, f"cannot parse {value!r}: expected a URL starting with {allowed}"
        )
    if scheme != "sqlite" and not parts.hostname:
        raise ConfigError(variable, f"cannot parse {value!r}: no host name")
    try:
        parts.port  # noqa: B018  (raises on a non-numeric port)
    except ValueError as exc:
        raise ConfigError(variable, f"cannot parse {value!r}: {exc}") from None
    return value


def _nameservers(value: str) -> tuple[tuple[str, int], ...]:
    servers = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        host, _, port = item.rpartition(":") if item.count(":") == 1 else (item, "", "53")
        if not port.isdigit() or not 0 < int(port) < 65536 or not host:
            raise ConfigError(
                "KOOMSG_DNS_NAMESERVERS", f"cannot parse {item!r}: expected host[:port]"
            )
        servers.append((host, int(port)))
    return tuple(servers)


def _positive_int(env: Mapping[str, str], variable: str, default: int) -> int:
    raw = env.get(variable)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) <= 0:
        raise ConfigError(variable, f"expected a positive whole number, got {raw!r}")
    return int(raw)


def _non_negative_int(env: Mapping[str, str], variable: str, default: int) -> int:
    raw = env.get(variable)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise ConfigError(variable, f"expected a whole number, 0 or more, got {raw!r}")
    return int(raw)


def _currency(value: str) -> str:
    if len(value) != 3 or not value.isascii() or not value.isalpha() or not value.isupper():
        raise ConfigError(
            "KOOMSG_CURRENCY", f"expected a 3-letter ISO 4217 code such as CNY, got {value!r}"
        )
    return value


def _positive_float(env: Mapping[str, str], variable: str, default: float) -> float:
    raw = env.get(variable)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0 or value != value or value == float("inf"):
        raise ConfigError(variable, f"expected a positive number of seconds, got {raw!r}")
    return value


def _choice(env: Mapping[str, str], variable: str, choices: tuple[str, ...], default: str) -> str:
    value = (env.get(variable) or default).strip().lower()
    if value not in choices:
        raise ConfigError(variable, f"expected one of {', '.join(choices)}, got {value!r}")
    return value


SECRET_KEY_FILE = "secret_key"


def _secret_keys(env: Mapping[str, str], data_dir: Path) -> tuple[str, ...]:
    """``KOOMSG_SECRET_KEY`` (comma-separated, newest first), else the data dir's key file
    (one key per line, newest first), else a new key file."""
    if env.get("KOOMSG_SECRET_KEY"):
        keys = tuple(key.strip() for key in env["KOOMSG_SECRET_KEY"].split(",") if key.strip())
        if not keys or any(len(key) < 16 for key in keys):
            raise ConfigError(
                "KOOMSG_SECRET_KEY",
                "each key must be at least 16 characters (several keys: comma-separated, newest first)",
            )
        return keys
    path = data_dir / SECRET_KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        # A process starting at the same time may write it first: then use theirs.
        with contextlib.suppress(FileExistsError):
            write_key_file(path, [secrets.token_urlsafe(48)], exclusive=True)
    keys = tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
    if not keys:
        raise ConfigError("KOOMSG_SECRET_KEY", f"the key file {path} is empty")
    return keys


def write_key_file(path: Path, keys: list[str], *, exclusive: bool = False) -> None:
    """Write the key file with mode 0600 from its first byte, never world-readable.

    ``exclusive``: fail with FileExistsError when it exists, so two processes
    starting together agree on one key. Otherwise the new content replaces
    the old atomically (a temporary file, also 0600, renamed over it).
    """
    target = path if exclusive else path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write("\n".join(keys) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    if not exclusive:
        os.replace(target, path)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    data_dir = Path(env.get("KOOMSG_DATA_DIR") or "./var").resolve()
    database_url = env.get("KOOMSG_DATABASE_URL") or f"sqlite+aiosqlite:///{data_dir / 'koomsg.db'}"
    _url("KOOMSG_DATABASE_URL", database_url, ("sqlite", "postgresql", "postgres"))
    database_url = _async_driver(database_url)
    broker_url = env.get("KOOMSG_BROKER_URL") or None
    if broker_url:
        _url("KOOMSG_BROKER_URL", broker_url, ("redis", "rediss", "amqp", "amqps"))
    smtp_url = env.get("KOOMSG_SMTP_URL") or None
    if smtp_url:
        _url("KOOMSG_SMTP_URL", smtp_url, ("smtp", "smtps"))
    public_url = (env.get("KOOMSG_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/")
    _url("KOOMSG_PUBLIC_URL", public_url, ("http", "https"))
    plugins = tuple(p.strip() for p in (env.get("KOOMSG_PLUGINS") or "").split(",") if p.strip())
    keys = _secret_keys(env, data_dir)
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        broker_url=broker_url,
        transport=env.get("KOOMSG_TRANSPORT") or "outbox",
        outbox_dir=Path(env.get("KOOMSG_OUTBOX_DIR") or data_dir / "outbox").resolve(),
        smtp_url=smtp_url,
        dns_nameservers=_nameservers(env.get("KOOMSG_DNS_NAMESERVERS") or ""),
        public_url=public_url,
        secret_key=keys[0],
        older_secret_keys=keys[1:],
        plugins=plugins,
        tracking_token_days=_positive_int(env, "KOOMSG_TRACKING_TOKEN_DAYS", 90),
        allowed_private_networks=_networks(env, "KOOMSG_ALLOWED_PRIVATE_NETWORKS"),
        max_query_depth=_positive_int(env, "KOOMSG_MAX_QUERY_DEPTH", 12),
        max_aliases=_positive_int(env, "KOOMSG_MAX_ALIASES", 30),
        max_tokens=_positive_int(env, "KOOMSG_MAX_TOKENS", 4000),
        max_query_cost=_positive_int(env, "KOOMSG_MAX_QUERY_COST", 25_000),
        max_subscriptions_per_connection=_positive_int(
            env, "KOOMSG_MAX_SUBSCRIPTIONS_PER_CONNECTION", 10
        ),
        max_parses_per_enterprise=_positive_int(env, "KOOMSG_MAX_PARSES_PER_ENTERPRISE", 2),
        max_parses=_positive_int(env, "KOOMSG_MAX_PARSES", 4),
        max_request_bytes=_positive_int(env, "KOOMSG_MAX_REQUEST_BYTES", 64 * 1024 * 1024),
        dns_timeout_seconds=float(_positive_int(env, "KOOMSG_DNS_TIMEOUT", 5)),
        domain_recheck_seconds=_positive_int(env, "KOOMSG_DOMAIN_RECHECK_SECONDS", 86400),
        smtp_direct_port=_positive_int(env, "KOOMSG_SMTP_DIRECT_PORT", 25),
        smtp_max_connections_per_host=_positive_int(
            env, "KOOMSG_SMTP_MAX_CONNECTIONS_PER_HOST", 10
        ),
        smtp_max_concurrency_per_enterprise=_positive_int(
            env, "KOOMSG_SMTP_MAX_CONCURRENCY_PER_ENTERPRISE", 50
        ),
        smtp_timeout_seconds=float(_positive_int(env, "KOOMSG_SMTP_TIMEOUT", 30)),
        spf_include=_dns_name(env, "KOOMSG_SPF_INCLUDE"),
        dmarc_target=_dns_name(env, "KOOMSG_DMARC_TARGET"),
        tracking_target=_dns_name(env, "KOOMSG_TRACKING_TARGET"),
        mx_host=_dns_name(env, "KOOMSG_MX_HOST"),
        batch_size=_positive_int(env, "KOOMSG_BATCH_SIZE", 500),
        build_processes=_non_negative_int(env, "KOOMSG_BUILD_PROCESSES", 0 if broker_url else 1),
        lease_seconds=_positive_float(env, "KOOMSG_LEASE_SECONDS", 30.0),
        max_claims=_positive_int(env, "KOOMSG_MAX_CLAIMS", 5),
        max_in_flight=_positive_int(env, "KOOMSG_MAX_IN_FLIGHT", 20),
        redispatch_seconds=_positive_float(env, "KOOMSG_REDISPATCH_SECONDS", 120.0),
        dispatch_interval_seconds=_positive_float(env, "KOOMSG_DISPATCH_INTERVAL", 0.5),
        sweep_interval_seconds=_positive_float(env, "KOOMSG_SWEEP_INTERVAL", 5.0),
        retry_min_seconds=_positive_float(env, "KOOMSG_RETRY_MIN_SECONDS", 300.0),
        retry_max_seconds=_positive_float(env, "KOOMSG_RETRY_MAX_SECONDS", 4000.0),
        retry_max_age_seconds=_positive_float(env, "KOOMSG_RETRY_MAX_AGE_SECONDS", 5 * 86400.0),
        tracking_links=_choice(env, "KOOMSG_TRACKING_LINKS", ("public", "domain"), "public"),
        stats_rollup_interval_seconds=_positive_float(env, "KOOMSG_STATS_ROLLUP_INTERVAL", 30.0),
        stats_rollup_skew_seconds=_positive_float(env, "KOOMSG_STATS_ROLLUP_SKEW_SECONDS", 300.0),
        stats_retention_days=_positive_int(env, "KOOMSG_STATS_RETENTION_DAYS", 366),
        pay_per_use_price_cents=_non_negative_int(env, "KOOMSG_PAY_PER_USE_PRICE_CENTS", 1),
        currency=_currency(env.get("KOOMSG_CURRENCY") or "CNY"),
        billing_sweep_interval_seconds=_positive_float(env, "KOOMSG_BILLING_SWEEP_INTERVAL", 60.0),
        rate_limit_rps=_positive_int(env, "KOOMSG_RATE_LIMIT_RPS", 50),
        rate_limit_burst=_positive_int(env, "KOOMSG_RATE_LIMIT_BURST", 200),
        rate_limit_storage=_rate_limit_storage(env, broker_url, database_url),
        auth_failures_per_minute=_positive_int(env, "KOOMSG_AUTH_FAILURES_PER_MINUTE", 10),
        public_introspection=_flag(env, "KOOMSG_PUBLIC_INTROSPECTION"),
        extra={k: v for k, v in env.items() if k.startswith("KOOMSG_")},
    )


RATE_LIMIT_STORAGES = ("memory", "database", "redis")


def _rate_limit_storage(env: Mapping[str, str], broker_url: str | None, database_url: str) -> str:
    """Share buckets where the processes already meet: Redis when it is the broker, else a
    PostgreSQL database; the embedded default is one process, so its memory suffices."""
    on_redis = bool(broker_url and broker_url.startswith(("redis://", "rediss://")))
    default = (
        "redis" if on_redis else "database" if database_url.startswith("postgres") else "memory"
    )
    storage = _choice(env, "KOOMSG_RATE_LIMIT_STORAGE", RATE_LIMIT_STORAGES, default)
    if storage == "redis" and not on_redis:
        raise ConfigError(
            "KOOMSG_RATE_LIMIT_STORAGE", "redis keeps the buckets on KOOMSG_BROKER_URL=redis://…"
        )
    return storage


def _flag(env: Mapping[str, str], variable: str) -> bool:
    raw = (env.get(variable) or "0").strip().lower()
    if raw not in ("0", "1", "true", "false", "yes", "no"):
        raise ConfigError(variable, f"expected 1 or 0, got {raw!r}")
    return raw in ("1", "true", "yes")


def _networks(env: Mapping[str, str], variable: str) -> tuple[Network, ...]:
    try:
        return parse_networks(env.get(variable) or "")
    except ValueError as exc:
        raise ConfigError(
            variable, f"expected comma-separated networks such as 10.0.0.0/8: {exc}"
        ) from None


def _dns_name(env: Mapping[str, str], variable: str) -> str:
    value = (env.get(variable) or "").strip().lower().rstrip(".")
    if value and not all(label and len(label) <= 63 for label in value.split(".")):
        raise ConfigError(variable, f"cannot parse {value!r}: expected a DNS name")
    return value


def _async_driver(url: str) -> str:
    """Pick the async driver for a plain SQLAlchemy URL, so users can paste the usual one."""
    for plain, driver in (
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


def check_transport(settings: Settings, known: set[str]) -> None:
    """Refuse a transport name that no loaded plugin provides."""
    if settings.transport not in known:
        names = ", ".join(sorted(known)) or "none"
        raise ConfigError(
            "KOOMSG_TRANSPORT", f"unknown transport {settings.transport!r} (known: {names})"
        )
