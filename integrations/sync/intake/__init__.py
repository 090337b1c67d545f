"""Webhooks accepted: each delivery, the call's newest snapshot and the jobs it triggers stored in
one transaction (in batches, by one writer thread); which calls changed, told to dashboards.

May import ``automations`` (which automations an event triggers) and ``jobs``.
"""
