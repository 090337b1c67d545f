"""What a manager reviews: the calls with their sync state, a call's timeline, re-syncs, charts.

May import ``jobs`` and ``callers``.
"""
