"""Writes the served schema as SDL: ``python -m koomsg.schema.export schema.graphql``."""

from __future__ import annotations

import sys
from pathlib import Path

from koomsg.schema.root import export_sdl


def main(argv: list[str]) -> int:
    target = Path(argv[1] if len(argv) > 1 else "schema.graphql")
    target.write_text(export_sdl())
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
