"""Erasure on request (GDPR art. 17, privacy notice § 9): erase what the warehouse need not keep about a customer.

`plan_request(con, secret, tables, customer_id)` sorts every record of the customer still held
(`intermediate.int_retention__records`) into what is erased now and what is kept, and why:

- accounting vouchers (invoices, lines, payments) are kept: the Accounting Act obliges it (art. 17(3)(b)),
  until their expiry date, after which the retention enforcement deletes them;
- a record under a legal hold (an open collection case, a dispute) is kept (art. 17(3)(e));
- a record whose retention clock has not started is kept while the thing goes on: an active service, an open
  debt, a key still out, an open ticket (the contract needs it; art. 17(1)(a) does not apply yet);
- everything else is erased at once, as the retention enforcement would erase it when its period ends: the
  customer's identifying data and the services' user IDs anonymised, the rest deleted.

The application records the erasures with core/erasure.py (ledger, raw, rejects, request lists for the source
systems, a fresh analytics build) and answers the person with `Answer`: counts per category, and for what is
kept, the reason and until when. The answer holds no personal data beyond the request's reference.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date

import duckdb

from core.erasure import RECORDS, Erasure, TableErasure
from core.pseudonym import pseudonymous_key
from core.sql import relation_exists

CUSTOMERS = "staging.stg_crm__customers"
LEGAL_OBLIGATION = "accounting_vouchers"  # kept whatever the request: the Accounting Act

REASONS = {
    "legal_obligation": {"en": "kept: the Accounting Act obliges us to keep accounting vouchers (GDPR art. "
                               "17(3)(b)); deleted when their period ends",
                         "fi": "säilytetään: kirjanpitolaki velvoittaa säilyttämään kirjanpitoaineiston "
                               "(tietosuoja-asetuksen 17 art. 3 b kohta); poistetaan säilytysajan päätyttyä"},
    "legal_hold": {"en": "kept: needed for a legal claim that is still open (GDPR art. 17(3)(e))",
                   "fi": "säilytetään: tarvitaan avoinna olevan oikeusvaateen vuoksi (17 art. 3 e kohta)"},
    "ongoing": {"en": "kept: the customer relationship it belongs to still goes on (an active service, an open "
                      "debt, a key still out or an open ticket); erasable when it ends",
                "fi": "säilytetään: asiakkuus, johon tieto liittyy, on yhä voimassa (voimassa oleva palvelu, avoin "
                      "velka, luovuttamaton avain tai avoin asiakaspalvelupyyntö); poistettavissa sen päätyttyä"},
}


class NoSuchCustomer(LookupError):
    pass


@dataclass
class Kept:
    category: str
    reason: str  # a key of REASONS
    records: int = 0
    until: date | None = None  # the latest expiry date among them (None: while the relationship goes on)


@dataclass
class Answer:
    """What an erasure request erased and kept, per category: the answer to the person."""
    erased: dict[str, dict[str, int]] = field(default_factory=dict)  # category -> action -> records
    kept: list[Kept] = field(default_factory=list)

    @property
    def erased_count(self) -> int:
        return sum(n for actions in self.erased.values() for n in actions.values())

    @property
    def kept_count(self) -> int:
        return sum(k.records for k in self.kept)

    def as_dict(self) -> dict:
        return {"erased": self.erased, "kept": [asdict(k) | {"explanation": REASONS[k.reason]} for k in self.kept]}


def plan_request(con: duckdb.DuckDBPyConnection, secret: bytes, tables: list[TableErasure], customer_id: str
                 ) -> tuple[list[Erasure], Answer]:
    """The customer's records to erase now, and the answer; reads the vault only."""
    if not relation_exists(con, RECORDS):
        raise LookupError(f"the vault has no {RECORDS}: run `warehouse build` first")
    if not con.execute(f"select count(*) from {CUSTOMERS} where customer_id = ?", [customer_id]).fetchone()[0]:
        raise NoSuchCustomer("no customer has that customer id")
    actions = {t.record_type: t.action for t in tables if t.record_type}
    rows = con.execute(f"""
        select record_type, record_id, category, status, clock_started_on, expires_on, clock_event
        from {RECORDS}
        where customer_id = ? and record_id is not null
        order by category, record_type, record_id""", [customer_id]).fetchall()
    erasures, answer, kept = [], Answer(), {}
    for record_type, record_id, category, status, started_on, expires_on, clock_event in rows:
        if category == LEGAL_OBLIGATION:
            reason = "legal_obligation"
        elif status == "on_hold":
            reason = "legal_hold"
        elif started_on is None:
            reason = "ongoing"
        elif record_type in actions:
            action = actions[record_type]
            own_event = started_on if clock_event != "relationship_ended" else None
            erasures.append(Erasure(record_type, record_id, pseudonymous_key(secret, record_id), customer_id,
                                    category, "erasure_request", action, own_event))
            counts = answer.erased.setdefault(category, {})
            counts[action] = counts.get(action, 0) + 1
            continue
        else:
            continue  # a record type nothing erases (none today): not the person's data in raw
        entry = kept.setdefault((category, reason), Kept(category, reason))
        entry.records += 1
        if reason != "ongoing" and expires_on is not None:
            entry.until = max(entry.until or expires_on, expires_on)
    answer.kept = list(kept.values())
    return erasures, answer
