"""The sync engine: what Callbridge does with Aircall's webhooks and Salesforce's records.

Packages by concept; each imports only those below it (never up, never in a circle), so a
package can be read, and tested, with what lies under it alone::

    runtime                 wires each job kind to its handler; makes a database ready
    ├── connect             Aircall's key and webhook, connected from the browser
    ├── review              the manager's table, timeline, re-sync, charts
    ├── recovery            backfill of calls missed while Callbridge was down
    ├── salesforce_triggers polling (T01-T04), Outbound Messages (T05), delivery to automations
    ├── intake              webhooks accepted in one transaction; the live fan-out
    ├── calls               the call's Task, the context card and insight card, agents' actions
    ├── automations         definitions, conditions, the step engine, actions on both SaaS,
    │                       field mapping, disposition rules, the builder's helpers
    ├── jobs                the durable queue, worker, retry, Aircall budget, the registry of
    │                       job kinds, the handler's context
    └── callers             who a number is in Salesforce, which User an agent is

``intake`` and ``calls`` sit side by side (neither imports the other); ``review`` reads only
``jobs`` and ``callers``. The web tier, the CLI, the benches and the tests import from here;
nothing here imports ``web``, Starlette or Jinja2.
"""
