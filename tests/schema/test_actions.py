"""Each resolver names one declared action, and every declared action guards something."""

from __future__ import annotations

import re
from pathlib import Path

from koomsg.core.iam.actions import ACTIONS

SCHEMA = Path(__file__).resolve().parents[2] / "koomsg" / "schema"
USED = re.compile(r'"(KooMessage:[A-Za-z]+:[A-Za-z]+)"')


def used_actions() -> set[str]:
    found: set[str] = set()
    for path in SCHEMA.rglob("*.py"):
        found.update(USED.findall(path.read_text()))
    return found


def test_every_named_action_is_declared() -> None:
    assert used_actions() <= set(ACTIONS), used_actions() - set(ACTIONS)


def test_every_declared_action_guards_a_resolver() -> None:
    assert set(ACTIONS) <= used_actions(), set(ACTIONS) - used_actions()
