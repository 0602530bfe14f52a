"""Fixtures come from koomsg.testing (a pytest plugin partners use too)."""
