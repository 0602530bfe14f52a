from __future__ import annotations

from pathlib import Path

import pytest

from koomsg.config import ConfigError, load_settings


def env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"KOOMSG_DATA_DIR": str(tmp_path), **values}


def test_defaults_are_the_embedded_setup(tmp_path: Path) -> None:
    settings = load_settings(env(tmp_path))
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'koomsg.db'}"
    assert settings.broker_url is None and settings.is_embedded_broker
    assert settings.transport == "outbox"
    assert settings.outbox_dir == tmp_path / "outbox"
    assert settings.public_url == "http://127.0.0.1:8000"
    assert settings.dns_nameservers == ()
    # Short leases kept alive by a heartbeat; what a crash may resend or retry is bounded.
    assert (settings.lease_seconds, settings.max_claims, settings.max_in_flight) == (30, 5, 20)
    # The secret key is generated once and then reused.
    assert load_settings(env(tmp_path)).secret_key == settings.secret_key
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_plain_database_urls_get_async_drivers(tmp_path: Path) -> None:
    settings = load_settings(env(tmp_path, KOOMSG_DATABASE_URL="postgresql://u@127.0.0.1/db"))
    assert settings.database_url == "postgresql+asyncpg://u@127.0.0.1/db"


def test_nameservers_parse(tmp_path: Path) -> None:
    settings = load_settings(env(tmp_path, KOOMSG_DNS_NAMESERVERS="127.0.0.1:5353, 10.0.0.1"))
    assert settings.dns_nameservers == (("127.0.0.1", 5353), ("10.0.0.1", 53))


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("KOOMSG_DATABASE_URL", "mysql://x/y"),
        ("KOOMSG_BROKER_URL", "kafka://x"),
        ("KOOMSG_BROKER_URL", "redis://"),
        ("KOOMSG_SMTP_URL", "smtp://host:port"),
        ("KOOMSG_PUBLIC_URL", "not a url"),
        ("KOOMSG_DNS_NAMESERVERS", "127.0.0.1:99999"),
        ("KOOMSG_MAX_QUERY_DEPTH", "-3"),
        ("KOOMSG_MAX_CLAIMS", "0"),
        ("KOOMSG_MAX_IN_FLIGHT", "many"),
        ("KOOMSG_SECRET_KEY", "short"),
    ],
)
def test_bad_values_name_the_variable(tmp_path: Path, variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(env(tmp_path, **{variable: value}))
    assert raised.value.variable == variable
    assert str(raised.value).startswith(variable)


def test_several_secret_keys_newest_first(tmp_path: Path) -> None:
    new, old = "n" * 20, "o" * 20
    settings = load_settings(env(tmp_path, KOOMSG_SECRET_KEY=f" {new} , {old} "))
    assert settings.secret_key == new and settings.secret_keys == (new, old)
    with pytest.raises(ConfigError, match="KOOMSG_SECRET_KEY"):
        load_settings(env(tmp_path, KOOMSG_SECRET_KEY=f"{new},short"))


def test_the_key_file_is_never_readable_by_others(tmp_path: Path) -> None:
    """Created 0600 from its first byte (not chmod-ed afterwards), even with a lax umask."""
    import os

    previous = os.umask(0)
    try:
        load_settings(env(tmp_path))
    finally:
        os.umask(previous)
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert load_settings(env(tmp_path)).older_secret_keys == ()


def test_tracking_token_days(tmp_path: Path) -> None:
    assert load_settings(env(tmp_path)).tracking_token_days == 90
    assert load_settings(env(tmp_path, KOOMSG_TRACKING_TOKEN_DAYS="7")).tracking_token_days == 7
    with pytest.raises(ConfigError, match="KOOMSG_TRACKING_TOKEN_DAYS"):
        load_settings(env(tmp_path, KOOMSG_TRACKING_TOKEN_DAYS="0"))


def test_rate_limit_defaults_and_storage_follow_the_setup(tmp_path: Path) -> None:
    embedded = load_settings(env(tmp_path))
    assert (embedded.rate_limit_rps, embedded.rate_limit_burst) == (50, 200)
    assert embedded.auth_failures_per_minute == 10
    assert embedded.rate_limit_storage == "memory"
    assert not embedded.public_introspection
    pg = "postgresql://u@127.0.0.1/db"
    on_pg = load_settings(env(tmp_path, KOOMSG_DATABASE_URL=pg))
    assert on_pg.rate_limit_storage == "database"
    rabbit = load_settings(env(tmp_path, KOOMSG_DATABASE_URL=pg, KOOMSG_BROKER_URL="amqp://h/"))
    assert rabbit.rate_limit_storage == "database"
    redis = load_settings(env(tmp_path, KOOMSG_DATABASE_URL=pg, KOOMSG_BROKER_URL="redis://h/0"))
    assert redis.rate_limit_storage == "redis"
    chosen = load_settings(env(tmp_path, KOOMSG_RATE_LIMIT_STORAGE="database"))
    assert chosen.rate_limit_storage == "database"
    assert load_settings(env(tmp_path, KOOMSG_PUBLIC_INTROSPECTION="1")).public_introspection


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("KOOMSG_RATE_LIMIT_RPS", "0"),
        ("KOOMSG_RATE_LIMIT_BURST", "many"),
        ("KOOMSG_RATE_LIMIT_STORAGE", "memcached"),
        ("KOOMSG_RATE_LIMIT_STORAGE", "redis"),  # without a Redis broker to keep it on
        ("KOOMSG_AUTH_FAILURES_PER_MINUTE", "-1"),
        ("KOOMSG_PUBLIC_INTROSPECTION", "maybe"),
    ],
)
def test_bad_rate_limit_settings_name_the_variable(
    tmp_path: Path, variable: str, value: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(env(tmp_path, **{variable: value}))
    assert raised.value.variable == variable
