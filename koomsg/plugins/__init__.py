"""The plugin contract of koomsg (``hookspecs``) and the manager that loads plugins."""

import pluggy

PROJECT = "koomsg"
hookimpl = pluggy.HookimplMarker(PROJECT)
hookspec = pluggy.HookspecMarker(PROJECT)

__all__ = ["PROJECT", "hookimpl", "hookspec"]
