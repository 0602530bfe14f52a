"""Sender domains: names, DKIM keys, expected DNS records and their verification."""
