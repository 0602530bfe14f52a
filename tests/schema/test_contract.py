"""The served schema is exported to schema.graphql and honours the public contract."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from koomsg.schema.root import export_sdl

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_CHECK = ROOT.parent / "shared" / "tools" / "contract_check.py"


def test_schema_graphql_is_current() -> None:
    exported = (ROOT / "schema.graphql").read_text()
    assert exported == export_sdl(), "schema.graphql is stale: run `make schema`"


def test_schema_honours_the_public_contract() -> None:
    assert CONTRACT_CHECK.exists(), f"{CONTRACT_CHECK} not found beside the repository"
    result = subprocess.run(
        [sys.executable, str(CONTRACT_CHECK), str(ROOT / "schema.graphql")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 breach(es)" in result.stdout
