"""The ``koomsg`` command: serve, worker, db upgrade, operator create-key|list-keys|revoke-key,
secrets rotate."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from koomsg.config import ConfigError, Settings, load_settings
from koomsg.plugins.manager import PluginLoadError

if TYPE_CHECKING:
    from koomsg.core.db import Database

log = logging.getLogger("koomsg")


def _settings_or_exit() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"koomsg: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _runtime_or_exit(settings: Settings, broker: Any = None) -> Any:
    from koomsg.runtime import Runtime

    try:
        return Runtime.build(settings, broker=broker)
    except (ConfigError, PluginLoadError) as exc:
        print(f"koomsg: cannot start: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _open_database(settings: Settings) -> Database:
    """The one way the CLI opens the database: every model module loaded first, so foreign keys
    resolve at flush whichever subcommand runs."""
    import koomsg.core.models  # noqa: F401
    from koomsg.core.db import Database

    return Database(settings.database_url)


def cmd_db_upgrade(_: argparse.Namespace) -> int:
    from koomsg.migrations import upgrade

    settings = _settings_or_exit()
    upgrade(settings.database_url)
    print("database is at the latest revision")
    return 0


async def _create_operator_key(settings: Settings, name: str) -> str:
    from koomsg.core.iam.keys import issue_key
    from koomsg.core.principal import PrincipalKind

    db = _open_database(settings)
    try:
        async with db.transaction() as session:
            _, secret = await issue_key(session, kind=PrincipalKind.OPERATOR, name=name)
    finally:
        await db.dispose()
    return secret


def cmd_operator_create_key(args: argparse.Namespace) -> int:
    from koomsg.migrations import upgrade

    settings = _settings_or_exit()
    if settings.is_sqlite:
        upgrade(settings.database_url)
    secret = asyncio.run(_create_operator_key(settings, args.name))
    print(f"operator key {args.name!r} created; its secret is shown once:")
    print(secret)
    return 0


async def _with_session(settings: Settings, work: Any) -> Any:

    db = _open_database(settings)
    try:
        async with db.transaction() as session:
            return await work(session)
    finally:
        await db.dispose()


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else "-"


def cmd_operator_list_keys(args: argparse.Namespace) -> int:
    from koomsg.core.iam import access_keys
    from koomsg.migrations import upgrade

    settings = _settings_or_exit()
    if settings.is_sqlite:
        upgrade(settings.database_url)

    async def work(session: Any) -> list[Any]:
        return await access_keys.operator_list(session, enterprise_id=args.enterprise)

    rows = [("KEY ID", "KIND", "NAME", "ENTERPRISE", "CREATED", "LAST USED", "REVOKED")]
    for key in asyncio.run(_with_session(settings, work)):
        if args.active and key.revoked_at is not None:
            continue
        rows.append(
            (
                key.id,
                key.kind,
                key.name,
                key.enterprise_id or "-",
                _when(key.created_at),
                _when(key.last_used_at),
                _when(key.revoked_at),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0


def cmd_operator_revoke_key(args: argparse.Namespace) -> int:
    from koomsg.core.errors import NotFound
    from koomsg.core.iam import access_keys
    from koomsg.core.iam.models import AccessKey
    from koomsg.migrations import upgrade

    settings = _settings_or_exit()
    if settings.is_sqlite:
        upgrade(settings.database_url)
    key_id = args.key_id.partition(".")[0]  # a pasted whole secret still names its key

    async def work(session: Any) -> tuple[Any, bool]:
        key = await session.get(AccessKey, key_id)
        was_revoked = key is not None and key.revoked_at is not None
        return await access_keys.operator_revoke(session, key_id=key_id), was_revoked

    try:
        key, was_revoked = asyncio.run(_with_session(settings, work))
    except NotFound as exc:
        print(f"koomsg: {exc.message}", file=sys.stderr)
        return 1
    if was_revoked:
        print(
            f"key {key.id} ({key.kind} {key.name!r}) was already revoked at {_when(key.revoked_at)}"
        )
    else:
        print(
            f"key {key.id} ({key.kind} {key.name!r}) revoked; it authenticates nowhere from now on"
        )
    return 0


def cmd_secrets_rotate(args: argparse.Namespace) -> int:
    import os
    import secrets

    from koomsg.config import SECRET_KEY_FILE, write_key_file
    from koomsg.core.crypto import BadToken
    from koomsg.core.rotation import reencrypt_stored_secrets
    from koomsg.migrations import upgrade

    settings = _settings_or_exit()
    if args.generate:
        if os.environ.get("KOOMSG_SECRET_KEY"):
            print(
                "koomsg: KOOMSG_SECRET_KEY is set: put the new key first in it yourself "
                "(comma-separated, newest first), then run `koomsg secrets rotate`",
                file=sys.stderr,
            )
            return 2
        keys = [secrets.token_urlsafe(48), *settings.secret_keys]
        write_key_file(settings.data_dir / SECRET_KEY_FILE, keys)
        print(f"new secret key added first to {settings.data_dir / SECRET_KEY_FILE}")
        settings = _settings_or_exit()
    if settings.is_sqlite:
        upgrade(settings.database_url)

    async def rotate() -> tuple[int, int]:
        db = _open_database(settings)
        try:
            done = await reencrypt_stored_secrets(db, settings.secret_keys)
        finally:
            await db.dispose()
        return done.reencrypted, done.already_newest

    try:
        reencrypted, already = asyncio.run(rotate())
    except BadToken:
        print(
            "koomsg: a stored secret fits none of the keys: was an old key removed too early?",
            file=sys.stderr,
        )
        return 1
    print(
        f"{reencrypted} stored secret(s) re-encrypted under the newest key, "
        f"{already} already were; {len(settings.secret_keys)} key(s) configured"
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from koomsg.migrations import upgrade
    from koomsg.web.app import create_app
    from koomsg.worker.services import ProcessServices

    settings = _settings_or_exit()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.is_sqlite:
        upgrade(settings.database_url)
    services = ProcessServices(settings, embedded_worker=settings.is_embedded_broker)
    runtime = _runtime_or_exit(settings, broker=services.broker)
    services.attach(runtime)
    if args.demo:
        from koomsg.web.demo import print_demo_keys

        asyncio.run(print_demo_keys(settings, host=args.host, port=args.port))
    app = create_app(runtime, on_startup=[services.start], on_shutdown=[services.stop])
    server = _GracefulServer(
        uvicorn.Config(app, host=args.host, port=args.port, log_level="info", lifespan="on")
    )
    server.run()
    return 0


class _GracefulServer:
    """uvicorn's server, but a SIGTERM/SIGINT after a clean shutdown exits 0.

    uvicorn re-raises the captured signal once it has shut down, which makes
    a graceful stop look like a crash to supervisors and scripts.
    """

    def __init__(self, config: Any) -> None:
        import uvicorn

        self.server = uvicorn.Server(config)

    def run(self) -> None:
        def stop(*_: Any) -> None:
            self.server.should_exit = True

        import contextlib

        @contextlib.contextmanager
        def capture() -> Any:
            previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
            try:
                yield
            finally:
                for signum, handler in previous.items():
                    signal.signal(signum, handler)

        self.server.capture_signals = capture  # type: ignore[method-assign]
        self.server.run()


def cmd_worker(args: argparse.Namespace) -> int:
    from koomsg.worker.services import ProcessServices

    settings = _settings_or_exit()
    if settings.is_embedded_broker:
        print(
            "koomsg: configuration error: KOOMSG_BROKER_URL: `koomsg worker` needs a redis:// or "
            "amqp:// broker; with none, `koomsg serve` runs the workers itself",
            file=sys.stderr,
        )
        return 2
    services = ProcessServices(settings, embedded_worker=True, threads=args.threads)
    runtime = _runtime_or_exit(settings, broker=services.broker)
    services.attach(runtime)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await services.start()
        print(f"koomsg worker running with {args.threads} threads", flush=True)
        await stop.wait()
        await services.stop()
        await runtime.close()

    asyncio.run(main())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="koomsg", description="Self-hosted email messaging service"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the GraphQL API (and, embedded, the workers)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--demo", action="store_true", help="create demo keys and print them first")
    serve.set_defaults(handler=cmd_serve)

    worker = commands.add_parser("worker", help="run delivery workers against the broker")
    worker.add_argument("--threads", type=int, default=8)
    worker.set_defaults(handler=cmd_worker)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    db_commands.add_parser("upgrade", help="apply migrations").set_defaults(handler=cmd_db_upgrade)

    operator = commands.add_parser("operator", help="platform operator tasks")
    op_commands = operator.add_subparsers(dest="operator_command", required=True)
    create_key = op_commands.add_parser("create-key", help="create an operator key")
    create_key.add_argument("--name", required=True)
    create_key.set_defaults(handler=cmd_operator_create_key)
    list_keys = op_commands.add_parser(
        "list-keys", help="list access keys (never their secrets): operator, root and IAM user keys"
    )
    list_keys.add_argument("--enterprise", metavar="ENTERPRISE_ID", help="only this enterprise's")
    list_keys.add_argument("--active", action="store_true", help="leave revoked keys out")
    list_keys.set_defaults(handler=cmd_operator_list_keys)
    revoke_key = op_commands.add_parser(
        "revoke-key", help="revoke any access key; it fails from the next request on"
    )
    revoke_key.add_argument(
        "key_id", metavar="KEY_ID", help="the key id (the secret's part before the dot)"
    )
    revoke_key.set_defaults(handler=cmd_operator_revoke_key)

    secrets_parser = commands.add_parser("secrets", help="secret-key maintenance")
    secrets_commands = secrets_parser.add_subparsers(dest="secrets_command", required=True)
    rotate = secrets_commands.add_parser(
        "rotate", help="re-encrypt stored secrets under the newest KOOMSG_SECRET_KEY"
    )
    rotate.add_argument(
        "--generate",
        action="store_true",
        help="first add a new key to the data dir's key file (when KOOMSG_SECRET_KEY is unset)",
    )
    rotate.set_defaults(handler=cmd_secrets_rotate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = build_parser().parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
