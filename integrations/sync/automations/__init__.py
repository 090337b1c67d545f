"""Automations: what runs when an Aircall event or a Salesforce record arrives.

- ``definitions`` (stored, versioned; the enabled ones per trigger), ``version_diff`` (what a
  restore changes), ``conditions``,
  ``dispatch`` (an event or record → jobs), ``runs`` (running, dry run, recent runs);
- ``actions`` (the catalogue and the step engine) over ``step_plan`` (what a step is made of),
  ``salesforce_steps``, ``aircall_steps``, ``soql_guard`` (A19: SELECT only), ``suppression``
  (Do Not Call numbers), ``aircall_contacts`` (the Aircall contact of a Salesforce record);
- ``fieldmap`` (the source language of mappings and inputs), ``mapping_store`` (mappings per
  object, checked against describe), ``task_fields`` (the call's Task texts);
- ``dispositions`` (the tag an agent sets → rules, checked against the org),
  ``disposition_runs`` (the steps a rule becomes, run), ``builder`` (what the editor offers).

Imports, downwards: runs, dispatch → definitions → dispositions → actions → the steps →
step_plan → mapping_store → fieldmap → task_fields; disposition_runs → dispositions. May import
``jobs`` and ``callers``.
"""
