"""Escort-style ads on several sites, written from templates with a per-author style.

What an analyst links ads by (Portnoff et al., KDD 2017, "Backpage and Bitcoin"): the posting fee paid
in BTC at the time's price, the same phone numbers across ads of one operation, the author's writing
style, reused photos (image hashes), and crypto addresses printed in the text. Each author here has a
style — greeting, emoji set, letter case, punctuation, how the phone is written, a signature phrase —
so stylometry has something real to find; the operation's authors share phones and photos, move through
a circuit of cities and use third-person, "new in town" wording (indicators listed in the FinCEN
advisory FIN-2020-A008 and in the Polaris/Thorn literature on trafficking ads).

Text is deliberately non-explicit. Phones are in the 555-01XX range that the North American Numbering
Plan reserves for fiction (valid for libphonenumber, owned by nobody); e-mail domains end in
``.example`` (RFC 2606).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pyarrow as pa

from tracer.ingest.human.ads import AD_SCHEMA

SITES = [("nightlist.example", "nightlist"), ("citycompanions.example", "citycompanions"),
         ("velvetboard.example", "velvetboard")]
# city, state, lat, lon, area codes, UTC offset in May (daylight time where observed)
CITIES = [
    ("New York", "NY", 40.7128, -74.0060, (212, 646, 917), "-04:00"),
    ("Newark", "NJ", 40.7357, -74.1724, (973, 862), "-04:00"),
    ("Atlanta", "GA", 33.7490, -84.3880, (404, 678, 470), "-04:00"),
    ("Miami", "FL", 25.7617, -80.1918, (305, 786), "-04:00"),
    ("Chicago", "IL", 41.8781, -87.6298, (312, 773, 872), "-05:00"),
    ("Houston", "TX", 29.7604, -95.3698, (713, 832, 281), "-05:00"),
    ("Dallas", "TX", 32.7767, -96.7970, (214, 469, 972), "-05:00"),
    ("Denver", "CO", 39.7392, -104.9903, (303, 720), "-06:00"),
    ("Phoenix", "AZ", 33.4484, -112.0740, (602, 480), "-07:00"),
    ("Las Vegas", "NV", 36.1699, -115.1398, (702, 725), "-07:00"),
    ("Los Angeles", "CA", 34.0522, -118.2437, (213, 323, 310), "-07:00"),
    ("Seattle", "WA", 47.6062, -122.3321, (206, 425), "-07:00"),
]
NAMES = ["Amber", "Bella", "Candy", "Destiny", "Ebony", "Faith", "Giselle", "Honey", "Ivy", "Jade", "Kiki",
         "Lola", "Mia", "Nina", "Olivia", "Paris", "Queenie", "Roxy", "Sasha", "Tiana", "Vanessa", "Yasmin"]
GREETINGS = ["Hi gentlemen", "Hey guys", "Hello there", "Good evening", "Hey you", "Welcome", "Hi loves"]
EMOJI = [["💋", "🌹"], ["✨", "💎"], ["🔥", "😘"], ["🍒", "💕"], ["🌸", "🦋"], ["👑", "💫"], []]
SIGNATURES = ["100% real pics", "no games no drama", "upscale gentlemen only", "text only please",
              "ask about specials", "discreet and friendly", "serious inquiries only", "no blocked calls"]
OP_PHRASES = ["new in town", "just arrived", "only here for a few days", "young and sweet",
              "she is waiting for you", "two girls available", "available 24/7"]
INDEPENDENT_PHRASES = ["independent", "my own schedule", "by appointment", "I set my own rates",
                       "regulars welcome", "I love meeting new people"]
TITLE_PATTERNS = ["{name} {phrase} {emoji}", "{phrase} - {name} in {city}", "{emoji} {name} {emoji} {phrase}",
                  "{city} {phrase} {name}", "{name} | {city} | {phrase}"]


@dataclass
class Author:
    author_id: str
    operation: str | None
    phones: list[str]
    emails: list[str]
    cities: list[int]
    greeting: str
    emoji: list[str]
    case: str  # upper, title, lower
    punct: str
    phone_style: int
    signature: str
    images: list[str]
    names: list[str]
    wallet_owner: int = -1  # economy owner that pays this author's fees
    ads: list[str] = field(default_factory=list)


def fiction_phone(rng: np.random.Generator, city: int) -> str:
    npa = int(rng.choice(CITIES[city][4]))
    return f"+1{npa}55501{int(rng.integers(0, 100)):02d}"


def write_phone(e164: str, style: int) -> str:
    d = e164[2:]
    return [f"({d[:3]}) {d[3:6]}-{d[6:]}", f"{d[:3]}.{d[3:6]}.{d[6:]}", f"{d[:3]}-{d[3:6]}-{d[6:]}",
            f"{d[:3]} {d[3:6]} {d[6:]}", f"{d}"][style]


def make_author(rng: np.random.Generator, author_id: str, operation: str | None, phones: list[str],
                cities: list[int], images: list[str]) -> Author:
    name = NAMES[int(rng.integers(len(NAMES)))].lower()
    return Author(
        author_id=author_id, operation=operation, phones=phones,
        emails=[f"{name}{int(rng.integers(10, 99))}@mail.example"] if rng.random() < 0.4 else [],
        cities=cities, greeting=GREETINGS[int(rng.integers(len(GREETINGS)))],
        emoji=EMOJI[int(rng.integers(len(EMOJI)))], case=["upper", "title", "lower"][int(rng.integers(3))],
        punct=["!!!", "!", "~", "...", " <3"][int(rng.integers(5))], phone_style=int(rng.integers(5)),
        signature=SIGNATURES[int(rng.integers(len(SIGNATURES)))], images=images,
        names=list(rng.choice(NAMES, size=3, replace=False)),
    )


def _case(text: str, case: str) -> str:
    return text.upper() if case == "upper" else text.title() if case == "title" else text.lower()


def write_ad(rng: np.random.Generator, a: Author, city: int, rate: int, phone_e164: str,
             btc_address: str | None) -> tuple[str, str]:
    """(title, body) in the author's style."""
    phrases = OP_PHRASES if a.operation else INDEPENDENT_PHRASES
    phrase = phrases[int(rng.integers(len(phrases)))]
    name = a.names[int(rng.integers(len(a.names)))]
    emoji = a.emoji[int(rng.integers(len(a.emoji)))] if a.emoji else ""
    title = TITLE_PATTERNS[int(rng.integers(len(TITLE_PATTERNS)))].format(
        name=name, phrase=phrase, emoji=emoji, city=CITIES[city][0]).strip()
    title = _case(title, a.case) + a.punct
    phone = write_phone(phone_e164, a.phone_style)
    second = phrases[int(rng.integers(len(phrases)))]
    lines = [
        f"{a.greeting}{a.punct} {emoji}".strip(),
        (f"{name} is {second} in {CITIES[city][0]}." if a.operation
         else f"I'm {name}, {second} in {CITIES[city][0]}."),
        f"Rates start at ${rate}/hr{a.punct}",
        f"Call or text {phone}",
    ]
    if a.emails:
        lines.append(f"Email {a.emails[0]}")
    if btc_address:
        lines.append(f"Deposit in bitcoin accepted: {btc_address}")
    lines.append(f"{a.signature}{a.punct} {emoji}".strip())
    return title, "\n".join(lines)


def ad_rows(ads: list[dict], run_id: int) -> pa.Table:
    """Ads as the ads ingester stores them (migration 004 adds fee_amount, fee_asset, posted_offset)."""
    rows = []
    for i, ad in enumerate(ads):
        rows.append({
            "ad_id": ad["ad_id"], "site": ad["site"], "posted_at": ad["posted_at"], "title": ad["title"],
            "body": ad["body"], "price": Decimal(ad["price"]).quantize(Decimal("0.01")), "currency": "USD",
            "phones": ad["phones"], "emails": ad["emails"], "location": ad["location"], "lat": ad["lat"],
            "lon": ad["lon"], "image_hashes": ad["images"], "addresses": ad["addresses"],
            "fee_chain": "bitcoin" if ad.get("fee_txid") else None, "fee_txid": ad.get("fee_txid"),
            "fee_amount": Decimal(ad["fee_sat"]) if ad.get("fee_txid") else None,
            "fee_asset": "BTC" if ad.get("fee_txid") else None, "pii_hashed": False,
            "posted_offset": ad["offset"], "source_line": i + 1, "run_id": run_id, "fee_usd": None,
        })
    return pa.Table.from_pylist(rows, AD_SCHEMA)


#: cities where the sites charge more than their default fee (as Backpage did for big markets)
DEAR_CITIES = ("New York, NY", "Los Angeles, CA", "Chicago, IL", "Miami, FL", "Las Vegas, NV")


def fee_schedule(rng: np.random.Generator, start: dt.datetime, days: int) -> list[dict]:
    """Each site's posting fee in USD: a default (location ``*``) and dearer big cities; the first site
    raises its default half-way through the period (a ``valid_from``/``valid_to`` pair). The rows are
    what ``tracer ads link --fees`` reads (docs/formats.md, "Fee schedule")."""
    rows = []
    mid = start + dt.timedelta(days=days // 2)
    for k, (site, _slug) in enumerate(SITES):
        default = float(rng.choice([5, 8, 12]))
        if k == 0:
            rows.append({"site": site, "location": "*", "fee_usd": default, "valid_from": None, "valid_to": mid})
            rows.append({"site": site, "location": "*", "fee_usd": default + 3, "valid_from": mid, "valid_to": None})
        else:
            rows.append({"site": site, "location": "*", "fee_usd": default, "valid_from": None, "valid_to": None})
        for city in DEAR_CITIES:
            if rng.random() < 0.7:
                rows.append({"site": site, "location": city, "fee_usd": float(rng.choice([18, 25, 35])),
                             "valid_from": None, "valid_to": None})
    return rows


def fee_of(schedule: list[dict], site: str, location: str, when: dt.datetime) -> float:
    """The schedule's fee for an ad: its city's row if the site has one, else the site's default."""
    for loc in (location, "*"):
        for row in schedule:
            if row["site"] == site and row["location"] == loc \
                    and (row["valid_from"] is None or row["valid_from"] <= when) \
                    and (row["valid_to"] is None or when < row["valid_to"]):
                return row["fee_usd"]
    raise LookupError(f"no fee for {site} {location}")


def image_hash(seed: int, label: str) -> str:
    return hashlib.sha256(f"{seed}:image:{label}".encode()).hexdigest()


def plan_ads(rng: np.random.Generator, seed: int, start: dt.datetime, days: int, n_op: int, n_bg: int,
             n_bg_authors: int, schedule: list[dict] | None = None, messy: np.random.Generator | None = None
             ) -> tuple[list[Author], list[dict]]:
    """The operation's two authors and ``n_bg_authors`` independent ones, and every ad's time and place
    (text is written later, once the addresses it may print are known).

    With a fee ``schedule`` each ad's ``fee_usd`` is the schedule's fee for its site, city and time. With
    ``messy`` (a random stream of its own, so the rest of the world does not move) some independent ads
    are paid by other means (``paid_with`` = ``card``: no Bitcoin payment) and some are paid but never
    scraped (``scraped`` False: their payment is on the chain, the ad is not in the store)."""
    circuit = [0, 1, 2, 4, 6]  # the operation moves New York -> Newark -> Atlanta -> Chicago -> Dallas
    op_phones = [fiction_phone(rng, c) for c in (0, 2, 4)]
    op_images = [image_hash(seed, f"op-{k}") for k in range(6)]
    authors = [make_author(rng, f"op-writer-{k + 1}", "operation-1", op_phones, circuit, op_images)
               for k in range(2)]
    for k in range(n_bg_authors):
        home = int(rng.integers(len(CITIES)))
        phones = [fiction_phone(rng, home)]
        if rng.random() < 0.15:
            phones.append(fiction_phone(rng, home))
        authors.append(make_author(rng, f"author-{k + 1:04d}", None, phones, [home],
                                   [image_hash(seed, f"author-{k}-{j}") for j in range(3)]))
    ads = []
    t0 = np.datetime64(start, "s")
    span = days * 86400
    for i in range(n_op):
        frac = (i + rng.random()) / n_op
        a = authors[i % 2]
        city = circuit[min(int(frac * len(circuit)), len(circuit) - 1)]
        ads.append({"author": a, "city": city, "when": t0 + np.timedelta64(int(frac * span * 0.95) + 3600, "s"),
                    "rate": int(rng.choice([150, 200, 250, 300])), "fee_usd": float(rng.choice([12, 18, 25, 35]))})
    bg_authors = authors[2:]
    for _ in range(n_bg):
        a = bg_authors[int(rng.integers(len(bg_authors)))]
        ads.append({"author": a, "city": a.cities[0],
                    "when": t0 + np.timedelta64(int(rng.uniform(3600, span * 0.97)), "s"),
                    "rate": int(rng.choice([120, 160, 200, 250, 300, 400])),
                    "fee_usd": float(rng.choice([5, 8, 12, 18, 25, 35]))})
    ads.sort(key=lambda ad: ad["when"])
    counters = {s: 0 for s, _ in SITES}
    for ad in ads:
        site = SITES[int(rng.integers(len(SITES)))][0]
        counters[site] += 1
        ad["site"] = site
        ad["ad_id"] = f"{site.split('.')[0]}-{counters[site]:06d}"
        c = CITIES[ad["city"]]
        ad["location"] = f"{c[0]}, {c[1]}"
        ad["lat"] = round(c[2] + rng.normal(0, 0.03), 5)
        ad["lon"] = round(c[3] + rng.normal(0, 0.03), 5)
        ad["offset"] = c[5]
        a = ad["author"]
        ad["phones"] = sorted(set(rng.choice(a.phones, size=min(len(a.phones), 1 + int(rng.random() < 0.3)),
                                             replace=False).tolist()))
        ad["emails"] = list(a.emails)
        ad["images"] = sorted(set(rng.choice(a.images, size=2, replace=False).tolist()))
        ad["price"] = ad["rate"]
        ad["paid_with"], ad["scraped"] = "bitcoin", True
        if schedule is not None:
            when = ad["when"].astype("datetime64[us]").astype(dt.datetime)
            ad["fee_usd"] = fee_of(schedule, site, ad["location"], when)
        if messy is not None and not a.operation:
            draw = messy.random()
            if draw < 0.06:
                ad["paid_with"] = "card"
            elif draw < 0.14:
                ad["scraped"] = False
        if ad["scraped"]:
            a.ads.append(ad["ad_id"])
    return authors, ads
