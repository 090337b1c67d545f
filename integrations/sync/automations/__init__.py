"""Automations: stored definitions and their versions, conditions, the step engine, the actions
on Salesforce and Aircall, the field mapping checked against describe, disposition rules, and
what the builder shows.

May import ``jobs`` and ``callers``.
"""
