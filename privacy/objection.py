"""Objection to direct marketing (GDPR art. 21(2)-(3), privacy notice § 9): recorded, and applied over the CRM.

`record_objection` adds a row to the vault's privacy.objections; the staging model of the customers applies it
over the CRM export's `marketing_consent` (`has_marketing_consent` is false from then on, whatever a later
export says, and `objected_to_marketing_on` says since when), so no mart or export for marketing selects the
customer again. An objection to direct marketing is absolute: it is never lifted by the warehouse. The access
package lists it (data map: privacy.objections).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from core.settings import Settings
from core.vault import open_vault

CUSTOMERS = "staging.stg_crm__customers"
SCOPES = ("direct_marketing",)


class ObjectionError(ValueError):
    pass


@dataclass(frozen=True)
class Objection:
    id: int
    already: bool  # the customer had objected before: nothing new recorded


def record_objection(settings: Settings, customer_id: str, *, request_ref: str, recorded_by: str,
                     scope: str = "direct_marketing", now: datetime | None = None) -> Objection:
    if scope not in SCOPES:
        raise ObjectionError(f"scope must be one of {', '.join(SCOPES)}")
    if not (request_ref or "").strip() or not (recorded_by or "").strip():
        raise ObjectionError("an objection needs the request reference and who recorded it")
    con = open_vault(settings)
    try:
        if not con.execute(f"select count(*) from {CUSTOMERS} where customer_id = ?", [customer_id]).fetchone()[0]:
            raise ObjectionError("no customer has that customer id")
        earlier = con.execute("select min(id) from privacy.objections where customer_id = ? and scope = ?",
                              [customer_id, scope]).fetchone()[0]
        if earlier is not None:
            return Objection(earlier, True)
        number = con.execute("select coalesce(max(id), 0) + 1 from privacy.objections").fetchone()[0]
        con.execute("insert into privacy.objections values (?, ?, ?, ?, ?, ?)",
                    [number, now or datetime.now().astimezone(), request_ref.strip(), recorded_by.strip(),
                     customer_id, scope])
        return Objection(number, False)
    finally:
        con.close()
