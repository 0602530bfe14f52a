from __future__ import annotations

from pathlib import Path

from koomsg.core.iam.actions import ACTIONS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_readme_opens_with_the_two_commands() -> None:
    first_block = README.split("```", 2)[1]
    assert "make run" in first_block and "make test" in first_block


def test_every_action_is_in_the_readme_table() -> None:
    for name in ACTIONS:
        assert f"`{name}`" in README, f"{name} missing from the README's action table"


def test_every_setting_is_documented() -> None:
    import re

    source = (Path(__file__).resolve().parents[1] / "koomsg" / "config.py").read_text()
    for variable in sorted(set(re.findall(r'"(KOOMSG_[A-Z_]+)"', source))):
        assert f"`{variable}`" in README, (
            f"{variable} missing from the README's configuration table"
        )
