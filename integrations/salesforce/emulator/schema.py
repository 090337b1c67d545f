"""Field and object definitions, and the describe documents built from them."""

from __future__ import annotations

from dataclasses import dataclass, field

TEXT_TYPES = frozenset(
    {"string", "textarea", "picklist", "multipicklist", "combobox", "phone", "email", "url"}
)
ID_TYPES = frozenset({"id", "reference"})
NUMBER_TYPES = frozenset({"int", "double", "currency", "percent"})

SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "int": "xsd:int",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
}

# Key prefixes of objects that lookups may point at but that the emulator does not model.
UNMODELLED_PREFIXES = {
    "Case": "500",
    "Campaign": "701",
    "Contract": "800",
    "Asset": "02i",
    "Product2": "01t",
    "Solution": "501",
    "Group": "00G",
}


@dataclass
class FieldDef:
    """One field as describe reports it, plus what the emulator needs to enforce it."""

    name: str
    type: str
    label: str
    length: int = 0
    createable: bool = True
    updateable: bool = True
    nillable: bool = True
    defaulted_on_create: bool = False
    default: object = None  # value applied on create when the field is absent
    external_id: bool = False
    id_lookup: bool = False
    unique: bool = False
    case_sensitive: bool = False
    filterable: bool = True
    sortable: bool = True
    custom: bool = False
    calculated: bool = False
    name_field: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    precision: int = 0
    scale: int = 0

    @property
    def writable(self) -> bool:
        return self.createable or self.updateable

    @property
    def required(self) -> bool:
        """Required on create: createable, not nillable, not defaulted (contract 2.7)."""
        return self.createable and not self.nillable and not self.defaulted_on_create

    def describe(self) -> dict:
        text = self.type in TEXT_TYPES
        is_id = self.type in ID_TYPES
        return {
            "aggregatable": self.filterable and self.type not in ("textarea",),
            "autoNumber": False,
            "byteLength": self.length * 3 if text else (18 if is_id else 0),
            "calculated": self.calculated,
            "calculatedFormula": None,
            "cascadeDelete": False,
            "caseSensitive": self.case_sensitive,
            "compoundFieldName": None,
            "controllerName": None,
            "createable": self.createable,
            "custom": self.custom,
            "defaultValue": self.default if self.type == "boolean" else None,
            "defaultValueFormula": None,
            "defaultedOnCreate": self.defaulted_on_create,
            "dependentPicklist": False,
            "deprecatedAndHidden": False,
            "digits": 0,
            "displayLocationInDecimal": False,
            "encrypted": False,
            "externalId": self.external_id,
            "extraTypeInfo": None,
            "filterable": self.filterable,
            "filteredLookupInfo": None,
            "groupable": self.filterable and self.type not in ("double", "currency", "percent"),
            "highScaleNumber": False,
            "htmlFormatted": False,
            "idLookup": self.id_lookup,
            "inlineHelpText": None,
            "label": self.label,
            "length": self.length if text else (18 if is_id else 0),
            "mask": None,
            "maskType": None,
            "name": self.name,
            "nameField": self.name_field,
            "namePointing": len(self.reference_to) > 1,
            "nillable": self.nillable,
            "permissionable": self.nillable and self.writable and not is_id,
            "picklistValues": [
                {
                    "active": True,
                    "defaultValue": value == self.default,
                    "label": value,
                    "validFor": None,
                    "value": value,
                }
                for value in self.picklist
            ],
            "polymorphicForeignKey": len(self.reference_to) > 1,
            "precision": self.precision,
            "queryByDistance": False,
            "referenceTargetField": None,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "relationshipOrder": None,
            "restrictedDelete": False,
            "restrictedPicklist": self.restricted,
            "scale": self.scale,
            "searchPrefilterable": is_id and self.type == "reference",
            "soapType": SOAP_TYPES.get(self.type, "xsd:string"),
            "sortable": self.sortable,
            "type": self.type,
            "unique": self.unique,
            "updateable": self.updateable,
            "writeRequiresMasterRead": False,
        }


@dataclass
class SObjectDef:
    """An object type: its key prefix, flags and fields (looked up case-insensitively)."""

    name: str
    label: str
    label_plural: str
    key_prefix: str
    fields: dict[str, FieldDef]
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    searchable: bool = True
    name_fields: tuple[str, ...] = ()  # what SOSL "IN NAME FIELDS" reads
    _lower: dict[str, FieldDef] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.reindex()

    def reindex(self) -> None:
        self._lower = {name.lower(): f for name, f in self.fields.items()}

    def field(self, name: str) -> FieldDef | None:
        return self._lower.get(name.lower())

    def relationship(self, name: str) -> FieldDef | None:
        lowered = name.lower()
        for f in self.fields.values():
            if f.relationship_name and f.relationship_name.lower() == lowered:
                return f
        return None

    def urls(self, version: str) -> dict[str, str]:
        base = f"/services/data/v{version}/sobjects/{self.name}"
        return {
            "compactLayouts": f"{base}/describe/compactLayouts",
            "rowTemplate": f"{base}/{{ID}}",
            "approvalLayouts": f"{base}/describe/approvalLayouts",
            "defaultValues": f"{base}/defaultValues?recordTypeId&fields",
            "describe": f"{base}/describe",
            "quickActions": f"{base}/quickActions",
            "layouts": f"{base}/describe/layouts",
            "sobject": base,
        }

    def summary(self, version: str) -> dict:
        """The entry of this object in the global describe (``GET /sobjects/``)."""
        return {
            "activateable": False,
            "createable": self.createable,
            "custom": False,
            "customSetting": False,
            "deepCloneable": False,
            "deletable": self.deletable,
            "deprecatedAndHidden": False,
            "feedEnabled": self.createable,
            "hasSubtypes": False,
            "isInterface": False,
            "isSubtype": False,
            "keyPrefix": self.key_prefix,
            "label": self.label,
            "labelPlural": self.label_plural,
            "layoutable": True,
            "mergeable": self.name in ("Account", "Contact", "Lead"),
            "mruEnabled": True,
            "name": self.name,
            "queryable": True,
            "replicateable": True,
            "retrieveable": True,
            "searchable": self.searchable,
            "triggerable": True,
            "undeletable": self.deletable,
            "updateable": self.updateable,
            "urls": {
                "rowTemplate": f"/services/data/v{version}/sobjects/{self.name}/{{ID}}",
                "describe": f"/services/data/v{version}/sobjects/{self.name}/describe",
                "sobject": f"/services/data/v{version}/sobjects/{self.name}",
            },
        }

    def describe(self, version: str) -> dict:
        body = self.summary(version)
        body.update(
            {
                "actionOverrides": [],
                "childRelationships": [],
                "compactLayoutable": True,
                "fields": [f.describe() for f in self.fields.values()],
                "namedLayoutInfos": [],
                "networkScopeFieldName": None,
                "recordTypeInfos": [],
                "searchLayoutable": True,
                "sobjectDescribeOption": "FULL",
                "supportedScopes": [{"label": "All " + self.label_plural, "name": "everything"}],
                "urls": self.urls(version),
            }
        )
        return body


CUSTOM_FIELD_DEFAULT_LENGTH = {
    "string": 255,
    "phone": 40,
    "email": 80,
    "url": 255,
    "textarea": 32000,
}


def custom_field(name: str, type_: str, props: dict) -> FieldDef:
    """Build a ``Foo__c`` field from ``add_field`` keywords (describe names or snake_case)."""
    if not name.endswith("__c") or not name[:-3].replace("_", "").isalnum():
        raise ValueError(f"custom field names end with __c: {name!r}")
    if type_ not in TEXT_TYPES | NUMBER_TYPES | {"boolean", "date", "datetime", "reference"}:
        raise ValueError(f"unsupported custom field type: {type_!r}")
    aliases = {
        "externalId": "external_id",
        "idLookup": "id_lookup",
        "caseSensitive": "case_sensitive",
        "restrictedPicklist": "restricted",
        "picklistValues": "picklist",
        "referenceTo": "reference_to",
        "relationshipName": "relationship_name",
        "defaultValue": "default",
    }
    kwargs = {aliases.get(key, key): value for key, value in props.items()}
    kwargs.setdefault("label", name[:-3].replace("_", " "))
    kwargs.setdefault("length", CUSTOM_FIELD_DEFAULT_LENGTH.get(type_, 0))
    if kwargs.get("external_id"):
        kwargs.setdefault("id_lookup", True)
    if "picklist" in kwargs:
        kwargs["picklist"] = tuple(kwargs["picklist"])
    if "reference_to" in kwargs:
        kwargs["reference_to"] = tuple(kwargs["reference_to"])
    if type_ == "boolean":
        kwargs.setdefault("nillable", False)
        kwargs.setdefault("defaulted_on_create", True)
        kwargs.setdefault("default", False)
    if type_ == "textarea":
        kwargs.setdefault("filterable", False)
        kwargs.setdefault("sortable", False)
    return FieldDef(name=name, type=type_, custom=True, **kwargs)
