"""Several callers' phone searches in one SOSL request, where the results can be told apart.

When jobs look up different new numbers at the same moment (a burst of new callers, a backfill),
one ``FIND {n1 OR n2 ...} IN PHONE FIELDS`` replaces a search each (``jobs.batching`` gathers
them). Every record comes back with all its phone fields, so ``matching.confirmed`` tells whose
number it is (a record holding two of the numbers is both callers'): each number gets what its
own search would have given. Where that cannot be sure, it gets its own search:

* a group keeps its term within what Salesforce reads with its operators (``soql.MAX_TERM``) and
  at most ``GROUP`` numbers; a number too short to stand in an OR is searched alone;
* each object's rows are capped at its share of the 2,000 one search returns: a group whose rows
  reach a cap may have lost some, and its numbers are searched one by one;
* a group Salesforce refuses is searched one by one too, so a refusal is only its own number's.
"""

from __future__ import annotations

import logging

from integrations.errors import RemoteRejected, RemoteUnavailable
from integrations.salesforce.client import Outcome, SalesforceClient
from integrations.salesforce.soql import phone_groups
from integrations.sync.callers.matching import Policy, searched, searched_together

log = logging.getLogger(__name__)
GROUP = 50  # numbers in one search: 50 E.164 numbers make a term of under 1,000 characters


def search_together(sf: SalesforceClient, numbers: list[str], policy: Policy) -> list[Outcome]:
    """Each number's search (its records, or the error its own search met), in as few
    requests as can be told apart: one per group, one per number where a group's could not."""
    outcomes: dict[str, Outcome] = {}
    for group in phone_groups(numbers, GROUP):
        found = None
        if len(group) > 1:
            try:
                found = searched_together(sf, group, policy)
            except RemoteRejected as exc:
                log.warning("matching.group_search_refused", extra={"error": str(exc.body)[:500]})
        if found is not None:
            outcomes.update((number, Outcome(None, None, records=found)) for number in group)
            continue
        for number in group:
            try:
                outcomes[number] = Outcome(None, None, records=searched(sf, number, policy))
            except (RemoteRejected, RemoteUnavailable) as exc:
                outcomes[number] = Outcome(None, exc)
    return [outcomes[number] for number in numbers]
