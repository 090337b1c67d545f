"""Backfill: calls Aircall made while Callbridge was not listening, found and synced afterwards.

May import ``intake`` (a backfilled call is accepted like a webhook), ``calls`` and ``jobs``.
"""
