"""Who is calling: the local index of numbers to Salesforce records, and agents' Salesforce Users.

The lowest package of the engine: it imports the Salesforce client and the store, nothing of
``integrations.sync``.
"""
