"""Sender addresses: ``prefix@domain`` on a verified sender domain."""
