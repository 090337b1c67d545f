"""Salesforce to Aircall: polling for new and updated records (T01-T04), Outbound Messages (T05),
and their delivery to the automations that watch them.

May import ``automations`` and ``jobs``.
"""
