"""Connections made from the browser: Aircall's API key (checked, then stored sealed) and the
Aircall webhook Callbridge registers, reads back and repairs.

May import ``automations`` (the events the enabled automations need), ``recovery`` (the
backfill offered after a repair) and ``jobs``.
"""
