"""A Salesforce REST API (v59.0) emulator served over real TLS on loopback.

Tests, benchmarks and the demo point production code (simple-salesforce in direct-session mode,
tokens fetched with httpx) at it unchanged::

    org = Org()
    ca, cert, key = make_tls(tmp_path)
    with serve(create_app(org), ssl_certfile=cert, ssl_keyfile=key, url_host="localhost") as srv:
        ...  # token from f"{srv.url}/services/oauth2/token", then simple_salesforce.Salesforce(...)

It follows the wire contract in ``shared/contracts/salesforce.md``; where Salesforce's behaviour is
uncertain it takes the stricter reading, since an emulator more lenient than Salesforce hides bugs.

Modules, listed so that each imports only modules after it: ``app`` (ASGI app, routing);
``auth`` (OAuth endpoints); ``api`` (REST resources); ``composite``; ``sosl``; ``soql`` (the
parser); ``soql_query`` (a parsed query and running it); ``soql_lexer``; ``outbound`` (Outbound
Message sender); ``org`` (``Org``: users, schema edits, tokens, allocation); ``lifecycle`` (record
create/update/delete/upsert); ``rules`` (per-object rules); ``person_accounts`` (Person
Accounts, once enabled); ``store`` (tables, SOSL index, journal); ``standard`` (standard
objects); ``picklists``; then ``sessions``, ``values``,
``security`` (the integration user's field-level security), ``schema``, ``wire``, ``errors``,
``faults``, ``tls``.
"""

from .app import create_app
from .errors import ApiError
from .faults import Fault, FaultPlan
from .org import Org
from .tls import make_tls

__all__ = ["ApiError", "Fault", "FaultPlan", "Org", "create_app", "make_tls"]
