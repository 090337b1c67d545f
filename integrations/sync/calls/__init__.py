"""A call's own work: its Task in Salesforce, the caller's context card and Aircall insight card,
calls left without a disposition, and what an agent does on a live call.

May import ``automations`` (the Task mapping), ``jobs`` and ``callers``.
"""
