"""What an org's admins add on top of the schema: validation rules and Apex triggers that refuse.

Salesforce's save order runs before-triggers, then custom validation rules, then duplicate rules.
A validation rule whose formula is true refuses the save with ``FIELD_CUSTOM_VALIDATION_EXCEPTION``
and the admin's own message (``fields`` names the field when the rule shows its error on one, and
is empty for a rule that shows it at the top of the page). A before-trigger that throws refuses it
with ``CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY`` and the Apex exception's text, as in::

    LeadScreening: execution of BeforeInsert

    caused by: System.DmlException: Leads from Blocked Inc are on hold

    Trigger.LeadScreening: line 7, column 1

sObject Collections report either per record (``statusCode``); a single-record call answers 400
with the error array. Records seeded by tests (``Org.insert``) skip both: they model data that
existed before the admin added the rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .errors import bad_request
from .schema import SObjectDef
from .store import Store

Condition = Callable[[dict], bool]  # the record as it would be saved -> True refuses it


@dataclass(frozen=True)
class ValidationRule:
    name: str
    sobject: str
    condition: Condition
    message: str
    field: str | None = None  # None: the error shows at the top of the page (``fields: []``)


@dataclass(frozen=True)
class TriggerError:
    name: str  # the trigger's name, e.g. LeadScreening
    sobject: str
    condition: Condition
    message: str
    line: int = 7


class AdminSetup(Store):
    """The org's validation rules and refusing triggers (Setup's screens for them, as tests and
    profiles use them), checked by :mod:`.lifecycle` on every API save."""

    def __init__(self, sosl_delay: float) -> None:
        super().__init__(sosl_delay)
        self.validation_rules: list[ValidationRule] = []
        self.trigger_errors: list[TriggerError] = []

    def add_validation_rule(
        self,
        sobject: str,
        name: str,
        condition: Condition,
        message: str,
        field: str | None = None,
    ) -> None:
        """An active validation rule: saves whose record meets ``condition`` are refused."""
        with self.lock:
            obj = self.sobject(sobject)
            shown_on = self._field(obj, field).name if field else None
            kept = [r for r in self.validation_rules if r.name != name]
            self.validation_rules = [
                *kept,
                ValidationRule(name, obj.name, condition, message, shown_on),
            ]

    def remove_validation_rule(self, name: str) -> None:
        """The admin deactivates (relaxes) the rule: saves it refused now pass."""
        with self.lock:
            if not any(r.name == name for r in self.validation_rules):
                raise ValueError(f"no validation rule {name}")
            self.validation_rules = [r for r in self.validation_rules if r.name != name]

    def add_trigger_error(
        self, sobject: str, trigger_name: str, condition: Condition, message: str
    ) -> None:
        """A before-insert/update trigger that throws ``message`` for records meeting
        ``condition``."""
        with self.lock:
            obj = self.sobject(sobject)
            kept = [t for t in self.trigger_errors if t.name != trigger_name]
            self.trigger_errors = [*kept, TriggerError(trigger_name, obj.name, condition, message)]

    def remove_trigger(self, trigger_name: str) -> None:
        with self.lock:
            if not any(t.name == trigger_name for t in self.trigger_errors):
                raise ValueError(f"no trigger {trigger_name}")
            self.trigger_errors = [t for t in self.trigger_errors if t.name != trigger_name]

    def check_admin_rules(self, obj: SObjectDef, record: dict, *, creating: bool) -> None:
        """Refuse ``record`` (merged, about to be saved) as the org's triggers, then its
        validation rules, would."""
        event = "BeforeInsert" if creating else "BeforeUpdate"
        for trigger in self.trigger_errors:
            if trigger.sobject == obj.name and trigger.condition(dict(record)):
                raise bad_request(
                    "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
                    f"{trigger.name}: execution of {event}\n\ncaused by: System.DmlException: "
                    f"{trigger.message}\n\nTrigger.{trigger.name}: line {trigger.line}, column 1",
                    [],
                )
        for rule in self.validation_rules:
            if rule.sobject == obj.name and rule.condition(dict(record)):
                raise bad_request(
                    "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                    rule.message,
                    [rule.field] if rule.field else [],
                )
