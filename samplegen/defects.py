"""Realistic data defects: which rows get them, and how a written row is altered.

Rows that carry a defect are written with a marker before their key; the writer finds the markers
while streaming the file, applies the change to that one line and records the physical line number.
Rows that are defects by themselves (a duplicate customer, an orphan invoice line, a service of an
unknown customer) are generated as data and only located.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from . import identifiers
from .days import DAY, NEVER, from_day

MARK = "~DEF~"  # never occurs in generated data; removed again before the line is written

KEY_FORMATS = {
    "customers": "C{:07d}", "services": "S{:08d}", "invoices": "I{:09d}", "payments": "P{:09d}",
    "tickets": "T{:07d}", "key_handovers": "H{:07d}", "collection_cases": "CC{:07d}",
}


def key(entity: str, number: int) -> str:
    return KEY_FORMATS[entity].format(int(number))


def count(rate: float, base: int, weight: float) -> int:
    """Number of defects of one kind: a share of its population, at least one when defects are on."""
    if rate <= 0 or base <= 0:
        return 0
    return max(1, round(rate * base * weight))


class Counts:
    """Defect counts of a run written in blocks, one ``count`` for the whole run per kind.

    A block gets what its population adds to the count of all populations so far. The blocks' counts thus
    add up to the count of the whole run (each block its share, rounded down or up): "at least one" holds
    once for the run, not once per block. The first block gets exactly ``count`` of its own population.
    """

    def __init__(self, rate: float):
        self.rate = rate
        self.seen: Counter[str] = Counter()  # population of earlier blocks, by kind

    def count(self, kind: str, population: int, weight: float) -> int:
        before = self.seen[kind]
        self.seen[kind] += population
        return count(self.rate, before + population, weight) - count(self.rate, before, weight)


@dataclass
class Defect:
    kind: str
    entity: str
    key: str
    column: str | None = None
    action: str = "locate"
    arg: int | str | None = None
    scope: str = "all"  # 'all': in every file holding the row; 'first': only in the first export's file
    note: str | None = None
    occurrences: list[tuple[str, int]] = field(default_factory=list)

    def manifest(self) -> dict:
        path, line = self.occurrences[0]
        entry = {"kind": self.kind, "file": path, "line": line, "key": self.key, "column": self.column}
        if self.note:
            entry["note"] = self.note
        entry["occurrences"] = [{"file": p, "line": n} for p, n in self.occurrences]
        return entry


class _Picker:
    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def take(self, candidates: np.ndarray, k: int) -> np.ndarray:
        k = min(k, len(candidates))
        return np.sort(self.rng.choice(candidates, k, replace=False)) if k else candidates[:0]


def _hetu_text(cust: dict, i: int) -> str:
    born = from_day(cust["birth_day"][i])
    sign = identifiers.SIGNS[cust["hetu_sign"][i]]
    nnn = f"{cust['hetu_nnn'][i]:03d}"
    ddmmyy = born.strftime("%d%m%y")
    return ddmmyy + sign + nnn + identifiers.hetu_check_char(ddmmyy, nnn)


def plan(rng: np.random.Generator, counts: Counts, n_customers: int, first: int, cust: dict, svc: dict,
         inv: dict, lines: dict, pay: dict, tickets: dict) -> list[Defect]:
    """Choose defect rows (disjoint within an entity) and describe each change."""
    if counts.rate <= 0:
        return []
    pick = _Picker(rng)
    out: list[Defect] = []
    created = cust["created_ts"] // DAY
    has_dup = np.zeros(len(created), dtype=bool)
    has_dup[cust["dup_of"][cust["dup_of"] >= 0]] = True
    plain = (cust["dup_of"] < 0) & ~has_dup & (cust["del_day"] == NEVER) & (created <= first)
    persons = np.flatnonzero(plain & ~cust["business"])
    firms = np.flatnonzero(plain & cust["business"])
    n_persons = int((~cust["business"]).sum())

    def ckey(i):
        return key("customers", cust["cust_no"][i])

    n_mc = counts.count("missing_contact", n_persons, 1.0)
    rows = pick.take(persons, n_mc + counts.count("invalid_hetu_check", n_persons, 0.2))
    for j, i in enumerate(rows):
        if j < n_mc:
            r = rng.random()
            for col in (["email"] if r < 0.6 else ["phone"] if r < 0.85 else ["email", "phone"]):
                out.append(Defect("missing_contact", "customers", ckey(i), col, "set", ""))
        else:
            out.append(Defect("invalid_hetu_check", "customers", ckey(i), "hetu", "hetu_check",
                              int(rng.integers(1, 31))))
    for i in pick.take(firms, counts.count("invalid_ytunnus_check", len(firms), 0.5)):
        out.append(Defect("invalid_ytunnus_check", "customers", ckey(i), "business_id", "ytunnus_check",
                          int(rng.integers(1, 10))))
    for i in np.flatnonzero(cust["dup_of"] >= 0):
        out.append(Defect("duplicate_person", "customers", ckey(i), "hetu",
                          note=f"same person as {ckey(cust['dup_of'][i])}"))

    # Services
    for i in np.flatnonzero(svc["owner"] < 0):
        out.append(Defect("unknown_customer_service", "services", key("services", svc["svc_no"][i]),
                          "customer_id"))
    owner_ok = (svc["owner"] >= 0) & (cust["del_day"][np.maximum(svc["owner"], 0)] == NEVER)
    svc_cands = np.flatnonzero(owner_ok & (svc["open_day"] <= first))

    # Text glitches spread over billing and services files of the first export.
    n_text = counts.count("text_glitch", n_customers, 0.05)
    malformed = rng.choice(["invoice_lines", "payments", "services"], n_text)
    bad_date = rng.choice(3, n_text)
    bad_number = rng.choice(3, n_text)
    n_term = counts.count("termination_before_opening", len(svc_cands), 0.1)
    rows = pick.take(svc_cands, n_term + int((malformed == "services").sum()))
    for j, i in enumerate(rows):
        k = key("services", svc["svc_no"][i])
        if j < n_term:
            out.append(Defect("termination_before_opening", "services", k, "terminated_on",
                              "term_before_open", int(rng.integers(1, 61))))
        else:
            out.append(_malformed(rng, "services", k))

    inv_cands = np.flatnonzero(inv["inv_day"] <= first)
    n_total = counts.count("total_mismatch", n_customers, 0.1)
    n_date, n_num = int((bad_date == 0).sum()), int((bad_number == 2).sum())
    rows = pick.take(inv_cands, n_total + n_date + n_num)
    for j, i in enumerate(rows):
        k = key("invoices", inv["inv_no"][i])
        if j < n_total:
            delta = int(rng.integers(1, 100)) * int(rng.choice([-1, 1]))
            out.append(Defect("total_mismatch", "invoices", k, "total_amount", "total_off", delta))
        else:
            out.append(_bad_value(rng, "invoices", k, "due_date", "vat_amount", is_date=j < n_total + n_date))

    line_cands = np.flatnonzero((lines["c_day"] <= first) & ~lines["orphan"] & (lines["kind"] == 0))
    n_mal = int((malformed == "invoice_lines").sum())
    n_date, n_num = int((bad_date == 2).sum()), int((bad_number == 0).sum())
    rows = pick.take(line_cands, n_mal + n_date + n_num)
    for j, i in enumerate(rows):
        k = f"{key('invoices', lines['inv_no'][i])}/{lines['line_no'][i]}"
        if j < n_mal:
            out.append(_malformed(rng, "invoice_lines", k))
        else:
            out.append(_bad_value(rng, "invoice_lines", k, "period_end", "amount_excl_vat",
                                  is_date=j < n_mal + n_date))
    for i in np.flatnonzero(lines["orphan"]):
        out.append(Defect("orphan_invoice_line", "invoice_lines",
                          f"{key('invoices', lines['inv_no'][i])}/{lines['line_no'][i]}", "invoice_id",
                          scope="first"))

    pay_cands = np.flatnonzero(pay["paid_day"] <= first)
    n_mal = int((malformed == "payments").sum())
    n_date, n_num = int((bad_date == 1).sum()), int((bad_number == 1).sum())
    rows = pick.take(pay_cands, n_mal + n_date + n_num)
    for j, i in enumerate(rows):
        k = key("payments", pay["pay_no"][i])
        if j < n_mal:
            out.append(_malformed(rng, "payments", k))
        else:
            out.append(_bad_value(rng, "payments", k, "paid_on", "amount", is_date=j < n_mal + n_date))

    # A customer writes their own HETU into a ticket message.
    t_owner = tickets["owner"]
    t_cands = np.flatnonzero(~cust["business"][t_owner] & (cust["del_day"][t_owner] == NEVER)
                             & (tickets["open_day"] <= first))
    for i in pick.take(t_cands, counts.count("hetu_in_ticket", len(tickets["owner"]), 0.5)):
        o = t_owner[i]
        text = (" My personal identity code is {}." if cust["lang"][o] == 2 else " Henkilötunnukseni on {}.")
        out.append(Defect("hetu_in_ticket", "tickets", key("tickets", tickets["ticket_no"][i]), "messages",
                          "append_body", text.format(_hetu_text(cust, o))))
    return out


def _bad_value(rng: np.random.Generator, entity: str, k: str, date_column: str, amount_column: str,
               is_date: bool) -> Defect:
    """An impossible date (30th or 31st of February) or an amount typed with the letter O for a zero."""
    if is_date:
        return Defect("impossible_date", entity, k, date_column, "impossible_date", int(rng.choice([30, 31])),
                      scope="first")
    return Defect("non_numeric_amount", entity, k, amount_column, "letter_o", scope="first")


def _malformed(rng: np.random.Generator, entity: str, k: str) -> Defect:
    """An extra ';'-separated field, as when a free-text note slips into the export unquoted."""
    extra = str(rng.choice(["HUOM", "tarkista", "ks. liite", "0"]))
    return Defect("malformed_row", entity, k, None, "extra_field", extra, scope="first")


# --- applying a defect to one written line ---------------------------------------------------------

def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100},{abs(cents) % 100:02d}"


def _parse_date(text: str) -> date:
    d, m, y = (int(x) for x in text.split("."))
    return date(y, m, d)


def _csv_field(value: str) -> str:
    if any(ch in value for ch in ';"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


def fix_csv_line(line: str, columns: list[str], defects: list[Defect]) -> str:
    """Apply the defects of one CSV row (the marker already removed) and return the new line."""
    fields = next(csv.reader([line], delimiter=";", quotechar='"'))
    col = {name: i for i, name in enumerate(columns)}
    suffix = ""
    for d in defects:
        i = col.get(d.column) if d.column else None
        if d.action == "set":
            fields[i] = str(d.arg)
        elif d.action == "hetu_check":
            chars = identifiers.HETU_CHECK_CHARS
            fields[i] = fields[i][:-1] + chars[(chars.index(fields[i][-1]) + int(d.arg)) % 31]
        elif d.action == "ytunnus_check":
            fields[i] = fields[i][:-1] + str((int(fields[i][-1]) + int(d.arg)) % 10)
        elif d.action == "impossible_date":
            fields[i] = f"{d.arg}.2.{fields[i].rsplit('.', 1)[1]}"
        elif d.action == "letter_o":
            fields[i] = fields[i][:-1] + "O"
        elif d.action == "total_off":
            fields[i] = _money(int(fields[i].replace(",", "")) + int(d.arg))
        elif d.action == "term_before_open":
            opened = _parse_date(fields[col["opened_on"]])
            term = opened - timedelta(days=int(d.arg))
            fields[i] = f"{term.day}.{term.month}.{term.year}"
            if not fields[col["termination_reason"]]:
                fields[col["termination_reason"]] = "customer_request"
        elif d.action == "extra_field":
            suffix = ";" + str(d.arg)
        elif d.action != "locate":
            raise ValueError(d.action)
    return ";".join(_csv_field(f) for f in fields) + suffix


def fix_json_line(line: str, defects: list[Defect]) -> str:
    obj = json.loads(line)
    for d in defects:
        if d.action == "append_body":
            body = obj["messages"][0]["body"]
            obj["messages"][0]["body"] = body + ("" if body.endswith((".", "!", "?")) else ".") + str(d.arg)
        elif d.action != "locate":
            raise ValueError(d.action)
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
