"""Secret-key rotation: ``koomsg secrets rotate`` after putting a new key first.

After it, every domain still signs, everything stored is under the newest key,
and every link signed with the old key still works while that key is listed.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path

import pytest
from sqlmodel import select

from koomsg.core.crypto import BadToken, is_encrypted_with_newest
from koomsg.core.domains import dkim
from koomsg.core.domains.models import DkimKey
from koomsg.core.domains.service import signing_key_for
from koomsg.core.tracking.links import CLICK, UNSUBSCRIBE, click_url, read_token, unsubscribe_url
from koomsg.runtime import Runtime
from koomsg.testing.plugin import TEST_SECRET, Api, EnterpriseHandle, sendable_setup
from koomsg.testing.serve import koomsg_env, run

NEW_KEY = "the-new-secret-key-rotated-2026"


def rotate(runtime: Runtime, keys: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = koomsg_env(
        runtime.settings.data_dir,
        KOOMSG_DATABASE_URL=runtime.settings.database_url,
        KOOMSG_SECRET_KEY=keys,
    )
    return run(["secrets", "rotate", *args], env)


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[-1]


@pytest.mark.slow
async def test_rotation_keeps_domains_signing_and_old_links_valid(
    api: Api, runtime: Runtime, enterprise: EnterpriseHandle
) -> None:
    setups = [await sendable_setup(api, runtime, domain=f"d{n}.example.com") for n in range(3)]
    old = runtime.settings
    click = token_of(click_url(old, old.public_url, "msg_1", "https://example.com/a"))
    leave = token_of(unsubscribe_url(old, old.public_url, "msg_1"))

    done = rotate(runtime, f"{NEW_KEY},{TEST_SECRET}")
    assert done.returncode == 0, done.stderr
    assert "3 stored secret(s) re-encrypted" in done.stdout
    again = rotate(runtime, f"{NEW_KEY},{TEST_SECRET}")
    assert "0 stored secret(s) re-encrypted" in again.stdout and "3 already" in again.stdout

    rotated = dataclasses.replace(old, secret_key=NEW_KEY, older_secret_keys=(TEST_SECRET,))
    async with runtime.db.session() as session:
        rows = list((await session.exec(select(DkimKey))).all())
        assert rows and all(
            is_encrypted_with_newest(NEW_KEY, r.private_key_encrypted) for r in rows
        )
        for setup in setups:
            key = await signing_key_for(session, settings=rotated, domain_id=setup.domain_id)
            signed = dkim.sign(
                b"From: a@b.example\r\nSubject: x\r\n\r\nbody\r\n",
                domain=key.domain,
                selector=key.selector,
                private_key_pem=key.private_key_pem,
            )
            assert signed.startswith(b"DKIM-Signature:")
    # Links made before the rotation still work; new ones are made with the new key.
    assert read_token(rotated, CLICK, click)["u"] == "https://example.com/a"
    assert read_token(rotated, UNSUBSCRIBE, leave)["m"] == "msg_1"
    fresh = token_of(click_url(rotated, old.public_url, "msg_2", "https://example.com/b"))
    only_new = dataclasses.replace(old, secret_key=NEW_KEY, older_secret_keys=())
    assert read_token(only_new, CLICK, fresh)["m"] == "msg_2"
    with pytest.raises(BadToken):
        read_token(only_new, CLICK, click)  # dropping the old key is what ends old links


@pytest.mark.slow
async def test_rotation_refuses_when_a_stored_secret_fits_no_key(
    api: Api, runtime: Runtime, enterprise: EnterpriseHandle
) -> None:
    await sendable_setup(api, runtime)
    done = rotate(runtime, NEW_KEY + "-without-the-old-one")
    assert done.returncode == 1 and "fits none of the keys" in done.stderr


def test_generate_adds_a_new_key_first_to_the_key_file(tmp_path: Path) -> None:
    env = koomsg_env(tmp_path)
    first = run(["secrets", "rotate", "--generate"], env)
    assert first.returncode == 0, first.stderr
    keys_after_one = (tmp_path / "secret_key").read_text().split()
    assert run(["secrets", "rotate", "--generate"], env).returncode == 0
    keys = (tmp_path / "secret_key").read_text().split()
    assert len(keys) == 3 and keys[1:] == keys_after_one
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    refused = run(["secrets", "rotate", "--generate"], {**env, "KOOMSG_SECRET_KEY": NEW_KEY})
    assert refused.returncode == 2 and "put the new key first" in refused.stderr
