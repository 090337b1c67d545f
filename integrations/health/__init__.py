"""Health: every check of the installation, each one line, ``ok`` or the problem in plain
words with where to fix it (Salesforce Setup, the Aircall dashboard, a setting).

``lines`` (the ``Line`` a check returns), one module per group of checks (``connections``,
``fields``, ``org``), and ``report`` (the list of checks, running them, the last result kept
for the top bar). Imports flow in that order; nothing here imports ``web``.
"""
