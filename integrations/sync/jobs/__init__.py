"""The durable job queue and what runs it: the registry of job kinds, the queue, the worker
loop, the retry decision, the shared Aircall budget, and the context a handler works with.

May import ``callers`` (the context's caller look-up). The worker knows no job kind: the
handlers are wired in ``integrations.sync.runtime``.
"""
