"""The standard objects of a fresh org (contract sections 5.2-5.8): their fields and properties.

Picklist values (out-of-box ones) come from :mod:`.picklists`. Every org gets its own copy
(:func:`standard_objects`), so custom fields and restricted-picklist switches stay per org.
"""

from __future__ import annotations

import copy

from .picklists import (
    ACTIVITY_TYPES,
    INDUSTRIES,
    LEAD_SOURCES,
    OPPORTUNITY_STAGES,
    TASK_STATUSES,
    TIME_ZONES,
)
from .schema import FieldDef, SObjectDef

# -- field helpers ----------------------------------------------------------------------------


def _f(name: str, type_: str, label: str, **kw: object) -> FieldDef:
    return FieldDef(name=name, type=type_, label=label, **kw)  # type: ignore[arg-type]


def _text(name: str, label: str, length: int, **kw: object) -> FieldDef:
    return _f(name, "string", label, length=length, **kw)


def _phone(name: str, label: str) -> FieldDef:
    return _f(name, "phone", label, length=40)


def _long_text(name: str, label: str, length: int = 32000) -> FieldDef:
    return _f(name, "textarea", label, length=length, filterable=False, sortable=False)


def _picklist(name: str, label: str, values: tuple[str, ...], **kw: object) -> FieldDef:
    return _f(name, "picklist", label, length=255, picklist=values, **kw)


def _flag(name: str, label: str, *, writable: bool = True) -> FieldDef:
    return _f(
        name,
        "boolean",
        label,
        nillable=False,
        defaulted_on_create=True,
        default=False,
        createable=writable,
        updateable=writable,
    )


def _lookup(name: str, label: str, to: tuple[str, ...], rel: str, **kw: object) -> FieldDef:
    return _f(name, "reference", label, reference_to=to, relationship_name=rel, **kw)


def _read_only(f: FieldDef) -> FieldDef:
    f.createable = False
    f.updateable = False
    return f


def _master(sobject: str) -> FieldDef:
    """A merge loser's winner (the loser is deleted; its related records move to the winner)."""
    return _read_only(_lookup("MasterRecordId", "Master Record ID", (sobject,), "MasterRecord"))


def _system_fields(*, owned: bool, owner_label: str = "Owner ID", owner_to=("User",)) -> list:
    fields = [
        _f(
            "Id",
            "id",
            "Record ID",
            createable=False,
            updateable=False,
            nillable=False,
            defaulted_on_create=True,
            id_lookup=True,
        ),
    ]
    if owned:
        fields.append(
            _lookup(
                "OwnerId",
                owner_label,
                owner_to,
                "Owner",
                nillable=False,
                defaulted_on_create=True,
            )
        )
    fields.append(_flag("IsDeleted", "Deleted", writable=False))
    stamps = (("CreatedDate", "Created Date"), ("LastModifiedDate", "Last Modified Date"))
    for name, label in stamps:
        fields.append(
            _read_only(_f(name, "datetime", label, nillable=False, defaulted_on_create=True))
        )
    for name, label, rel in (
        ("CreatedById", "Created By ID", "CreatedBy"),
        ("LastModifiedById", "Last Modified By ID", "LastModifiedBy"),
    ):
        fields.append(
            _read_only(
                _lookup(name, label, ("User",), rel, nillable=False, defaulted_on_create=True)
            )
        )
    fields.append(
        _read_only(
            _f(
                "SystemModstamp",
                "datetime",
                "System Modstamp",
                nillable=False,
                defaulted_on_create=True,
            )
        )
    )
    return fields


def _person_name(label_last: int = 80) -> list[FieldDef]:
    return [
        _text("LastName", "Last Name", label_last, nillable=False),
        _text("FirstName", "First Name", 40),
        _picklist("Salutation", "Salutation", ("Mr.", "Ms.", "Mrs.", "Dr.", "Prof.")),
        _read_only(_text("Name", "Full Name", 121, name_field=True)),
    ]


def _activity_fields() -> list[FieldDef]:
    """Fields shared by Task and Event (both are Activities)."""
    what_to = ("Account", "Opportunity", "Campaign", "Case", "Contract", "Asset", "Product2")
    return [
        _lookup("WhoId", "Name ID", ("Contact", "Lead"), "Who"),
        _lookup("WhatId", "Related To ID", what_to, "What"),
        _f(
            "Subject",
            "combobox",
            "Subject",
            length=255,
            picklist=("Call", "Send Letter", "Send Quote", "Other"),
            name_field=True,
        ),
        _f("ActivityDate", "date", "Due Date Only"),
        _long_text("Description", "Description"),
        _read_only(_lookup("AccountId", "Account ID", ("Account",), "Account")),
        _picklist("Type", "Type", ACTIVITY_TYPES, restricted=True),
    ]


def _by_name(fields: list[FieldDef]) -> dict[str, FieldDef]:
    return {f.name: f for f in fields}


def _account() -> SObjectDef:
    fields = [
        *_system_fields(owned=True),
        _master("Account"),
        _text("Name", "Account Name", 255, nillable=False, name_field=True),
        _picklist(
            "Type",
            "Account Type",
            (
                "Prospect",
                "Customer - Direct",
                "Customer - Channel",
                "Channel Partner / Reseller",
                "Installation Partner",
                "Technology Partner",
                "Other",
            ),
        ),
        _lookup("ParentId", "Parent Account ID", ("Account",), "Parent"),
        _text("AccountNumber", "Account Number", 40),
        _phone("Phone", "Account Phone"),
        _phone("Fax", "Account Fax"),
        _f("Website", "url", "Website", length=255),
        _picklist("Industry", "Industry", INDUSTRIES),
        _f("NumberOfEmployees", "int", "Employees", precision=8),
        _f("AnnualRevenue", "currency", "Annual Revenue", precision=18),
        _text("BillingStreet", "Billing Street", 255),
        _text("BillingCity", "Billing City", 40),
        _text("BillingState", "Billing State/Province", 80),
        _text("BillingPostalCode", "Billing Zip/Postal Code", 20),
        _text("BillingCountry", "Billing Country", 80),
        _long_text("Description", "Account Description"),
    ]
    return SObjectDef(
        "Account", "Account", "Accounts", "001", _by_name(fields), name_fields=("Name",)
    )


def _contact() -> SObjectDef:
    fields = [
        *_system_fields(owned=True),
        _master("Contact"),
        *_person_name(),
        _lookup("AccountId", "Account ID", ("Account",), "Account"),
        _text("Title", "Title", 128),
        _text("Department", "Department", 80),
        _f("Email", "email", "Email", length=80, id_lookup=True),
        _phone("Phone", "Business Phone"),
        _phone("MobilePhone", "Mobile Phone"),
        _phone("HomePhone", "Home Phone"),
        _phone("OtherPhone", "Other Phone"),
        _phone("AssistantPhone", "Asst. Phone"),
        _phone("Fax", "Business Fax"),
        _picklist("LeadSource", "Lead Source", LEAD_SOURCES),
        _flag("DoNotCall", "Do Not Call"),
        _flag("HasOptedOutOfEmail", "Email Opt Out"),
        _text("MailingCity", "Mailing City", 40),
        _text("MailingCountry", "Mailing Country", 80),
        _long_text("Description", "Contact Description"),
    ]
    return SObjectDef(
        "Contact",
        "Contact",
        "Contacts",
        "003",
        _by_name(fields),
        name_fields=("Name", "FirstName", "LastName"),
    )


def _lead() -> SObjectDef:
    statuses = (
        "Open - Not Contacted",
        "Working - Contacted",
        "Closed - Converted",
        "Closed - Not Converted",
    )
    fields = [
        *_system_fields(owned=True, owner_to=("Group", "User")),
        _master("Lead"),
        *_person_name(),
        _text("Company", "Company", 255, nillable=False),
        _text("Title", "Title", 128),
        _f("Email", "email", "Email", length=80, id_lookup=True),
        _phone("Phone", "Phone"),
        _phone("MobilePhone", "Mobile Phone"),
        _phone("Fax", "Fax"),
        _f("Website", "url", "Website", length=255),
        _picklist(
            "Status",
            "Status",
            statuses,
            nillable=False,
            defaulted_on_create=True,
            default="Open - Not Contacted",
            restricted=True,
        ),
        _picklist("LeadSource", "Lead Source", LEAD_SOURCES),
        _picklist("Industry", "Industry", INDUSTRIES),
        _flag("DoNotCall", "Do Not Call"),
        _flag("HasOptedOutOfEmail", "Email Opt Out"),
        _flag("HasOptedOutOfFax", "Fax Opt Out"),
        _flag("IsConverted", "Converted", writable=False),
        _read_only(_f("ConvertedDate", "date", "Converted Date")),
        _read_only(
            _lookup("ConvertedAccountId", "Converted Account ID", ("Account",), "ConvertedAccount")
        ),
        _read_only(
            _lookup("ConvertedContactId", "Converted Contact ID", ("Contact",), "ConvertedContact")
        ),
        _read_only(
            _lookup(
                "ConvertedOpportunityId",
                "Converted Opportunity ID",
                ("Opportunity",),
                "ConvertedOpportunity",
            )
        ),
        _long_text("Description", "Description"),
    ]
    return SObjectDef(
        "Lead",
        "Lead",
        "Leads",
        "00Q",
        _by_name(fields),
        name_fields=("Name", "FirstName", "LastName", "Company"),
    )


def _opportunity() -> SObjectDef:
    fields = [
        *_system_fields(owned=True),
        _text("Name", "Name", 120, nillable=False, name_field=True),
        _lookup("AccountId", "Account ID", ("Account",), "Account"),
        _picklist("StageName", "Stage", tuple(OPPORTUNITY_STAGES), nillable=False, restricted=True),
        _f("CloseDate", "date", "Close Date", nillable=False),
        _f("Amount", "currency", "Amount", precision=18, scale=2),
        _f("Probability", "percent", "Probability (%)", precision=3, defaulted_on_create=True),
        _picklist(
            "ForecastCategoryName",
            "Forecast Category",
            ("Omitted", "Pipeline", "Best Case", "Commit", "Closed"),
            defaulted_on_create=True,
        ),
        _picklist(
            "Type",
            "Opportunity Type",
            (
                "Existing Customer - Upgrade",
                "Existing Customer - Replacement",
                "Existing Customer - Downgrade",
                "New Customer",
            ),
        ),
        _picklist("LeadSource", "Lead Source", LEAD_SOURCES),
        _flag("IsClosed", "Closed", writable=False),
        _flag("IsWon", "Won", writable=False),
        _long_text("Description", "Description"),
    ]
    return SObjectDef(
        "Opportunity",
        "Opportunity",
        "Opportunities",
        "006",
        _by_name(fields),
        name_fields=("Name",),
    )


def _task() -> SObjectDef:
    fields = (
        _system_fields(owned=True, owner_label="Assigned To ID")
        + _activity_fields()
        + [
            _picklist(
                "Status",
                "Status",
                TASK_STATUSES,
                nillable=False,
                defaulted_on_create=True,
                default="Not Started",
                restricted=True,
            ),
            _picklist(
                "Priority",
                "Priority",
                ("High", "Normal", "Low"),
                nillable=False,
                defaulted_on_create=True,
                default="Normal",
                restricted=True,
            ),
            _picklist(
                "TaskSubtype",
                "Task Subtype",
                ("Task", "Email", "ListEmail", "Cadence", "Call"),
                updateable=False,
                defaulted_on_create=True,
                default="Task",
                restricted=True,
            ),
            _picklist(
                "CallType", "Call Type", ("Inbound", "Outbound", "Internal"), restricted=True
            ),
            _f("CallDurationInSeconds", "int", "Call Duration", precision=8),
            _text("CallObject", "Call Object Identifier", 255),
            _text("CallDisposition", "Call Result", 255),
            _flag("IsReminderSet", "Reminder Set"),
            _f("ReminderDateTime", "datetime", "Reminder Date/Time"),
            _flag("IsClosed", "Closed", writable=False),
            _flag("IsHighPriority", "High Priority", writable=False),
            _read_only(_f("CompletedDateTime", "datetime", "Completed Date/Time")),
        ]
    )
    return SObjectDef("Task", "Task", "Tasks", "00T", _by_name(fields), name_fields=("Subject",))


def _event() -> SObjectDef:
    fields = (
        _system_fields(owned=True, owner_label="Assigned To ID")
        + _activity_fields()
        + [
            _f("ActivityDateTime", "datetime", "Due Date Time"),
            _f("StartDateTime", "datetime", "Start Date Time"),
            _f("EndDateTime", "datetime", "End Date Time"),
            _f("DurationInMinutes", "int", "Duration", precision=8),
            _flag("IsAllDayEvent", "All-Day Event"),
            _text("Location", "Location", 255),
            _picklist(
                "ShowAs",
                "Show Time As",
                ("Busy", "OutOfOffice", "Free"),
                defaulted_on_create=True,
                default="Busy",
            ),
        ]
    )
    return SObjectDef("Event", "Event", "Events", "00U", _by_name(fields), name_fields=("Subject",))


def _user() -> SObjectDef:
    fields = [
        *_system_fields(owned=False),
        _text("Username", "Username", 80, nillable=False, unique=True, id_lookup=True),
        _text("LastName", "Last Name", 80, nillable=False),
        _text("FirstName", "First Name", 40),
        _text("Name", "Full Name", 121, createable=False, updateable=False, name_field=True),
        _text("Alias", "Alias", 8, nillable=False),
        _f("Email", "email", "Email", length=128, nillable=False),
        _flag("IsActive", "Active"),
        _picklist("TimeZoneSidKey", "Time Zone", TIME_ZONES, nillable=False, restricted=True),
        _phone("Phone", "Phone"),
        _phone("MobilePhone", "Mobile"),
        _text("Title", "Title", 80),
        _text("Department", "Department", 80),
    ]
    return SObjectDef(
        "User",
        "User",
        "Users",
        "005",
        _by_name(fields),
        createable=False,
        updateable=False,
        deletable=False,
        name_fields=("Name", "FirstName", "LastName"),
    )


def _organization() -> SObjectDef:
    fields = [
        _f("Id", "id", "Organization ID", createable=False, updateable=False, nillable=False),
        _text("Name", "Name", 80, nillable=False, name_field=True),
        _picklist("TimeZoneSidKey", "Default Time Zone", TIME_ZONES, nillable=False),
        _text("DefaultLocaleSidKey", "Default Locale", 40, nillable=False),
        _text("LanguageLocaleKey", "Default Language", 40, nillable=False),
        _text("OrganizationType", "Edition", 40),
        _text("InstanceName", "Instance Name", 5),
        _f("IsSandbox", "boolean", "Is Sandbox", nillable=False, default=False),
        _f("CreatedDate", "datetime", "Created Date", nillable=False),
        _f("LastModifiedDate", "datetime", "Last Modified Date", nillable=False),
        _f("SystemModstamp", "datetime", "System Modstamp", nillable=False),
    ]
    for f in fields:
        _read_only(f)
    return SObjectDef(
        "Organization",
        "Organization",
        "Organizations",
        "00D",
        _by_name(fields),
        createable=False,
        updateable=False,
        deletable=False,
        searchable=False,
    )


def _duplicate_rule() -> SObjectDef:
    """Setup's duplicate rules, read-only to the API (rows come from ``Org.duplicate_rules``)."""
    fields = [
        *_system_fields(owned=False),
        _text("DeveloperName", "Rule Name", 80, nillable=False),
        _text("MasterLabel", "Label", 80, nillable=False, name_field=True),
        _picklist("SobjectType", "Object", ("Account", "Contact", "Lead"), nillable=False),
        _flag("IsActive", "Active"),
    ]
    for f in fields:
        _read_only(f)
    return SObjectDef(
        "DuplicateRule",
        "Duplicate Rule",
        "Duplicate Rules",
        "0Bm",
        _by_name(fields),
        createable=False,
        updateable=False,
        deletable=False,
        searchable=False,
    )


_TEMPLATES = {
    o.name: o
    for o in (
        _account(),
        _contact(),
        _lead(),
        _opportunity(),
        _task(),
        _event(),
        _user(),
        _organization(),
        _duplicate_rule(),
    )
}


def standard_objects() -> dict[str, SObjectDef]:
    """A fresh, independently mutable copy of the standard objects."""
    return copy.deepcopy(_TEMPLATES)
