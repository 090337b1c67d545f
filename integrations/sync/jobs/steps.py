"""A recorded step (``JobStep.action``, as ``Context.record`` writes it) in a manager's words.

The timeline of a call and the runs of an automation both show steps; they read the same words.
"""

from __future__ import annotations

_WORDS = {  # a step's action as recorded -> what a manager reads
    "insight card": "Show an insight card in Aircall",
    "get call": "Read the call from Aircall",
    "comment": "Add a note to the call in Aircall",
    "tag call": "Tag the call in Aircall",
    "create tag": "Create a tag in Aircall",
    "read caller context": "Read the caller's record in Salesforce",
}


def step_words(action: str, service: str) -> str:
    """``("create Task", "salesforce")`` -> "Create a Task in Salesforce"."""
    if action in _WORDS:
        return _WORDS[action]
    verb, _, sobject = action.partition(" ")
    if verb in ("create", "update", "upsert") and sobject[:1].isupper() and " " not in sobject:
        article = "an" if sobject[0] in "AEIOU" else "a"
        return f"{verb.capitalize()} {article} {sobject} in {service.capitalize()}"
    if service == "callbridge":  # work Callbridge queues for itself ("log the call")
        return action[:1].upper() + action[1:]
    return f"{service.capitalize()}: {action}"
