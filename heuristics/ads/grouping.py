"""Ad author grouping: ads into operations by what their authors reuse.

Portnoff et al. (KDD 2017) link ads by one author through stylometry, with shared phone numbers and
e-mails as ground truth; the anti-trafficking literature (Polaris; FinCEN advisory FIN-2020-A008) adds
reused photos. Evidence, strongest first:

- **phone**, **email**: the same normalised phone number or e-mail in two ads (exact; hashed values
  match as long as both were hashed with one salt);
- **image**: the same image hash;
- **text**: character n-gram TF-IDF cosine (``char_wb`` 2–4-grams, sublinear tf) of title and body with
  the identifiers, digits and the ad's own city masked, so that what is compared is the author's
  writing — greeting, emoji, letter case, punctuation, how the phone is written, signature phrase —
  not the shared number or the town. Pairs at or above ``text_threshold`` are linked.

Groups are the connected components of those links (a union-find over ads); ``ad_group_links`` keeps
the spanning forest — the link that merged two groups, phones first, then e-mails, photos, and text
pairs by falling similarity — and ``ad_groups.basis`` lists the kinds of evidence a group rests on.

Known failure modes: one shared phone (a booker, a reused burner, a number recycled by the carrier)
joins unrelated authors, and components chain: A–B and B–C put A with C; text templates shared by many
authors (ad-posting services, copied ads) look alike; an author who changes style, phone and photos
is split.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from tracer.errors import MoneytrailError
from tracer.store import Store

KINDS = ("phone", "email", "image", "text")


@dataclass(frozen=True)
class GroupParams:
    text_threshold: float = 0.8  # cosine of the masked texts at or above which two ads are linked
    use_text: bool = True

    def check(self) -> None:
        if not 0 < self.text_threshold <= 1:
            raise MoneytrailError(f"--text-threshold {self.text_threshold:g}: must be in (0, 1]")


@dataclass
class GroupResult:
    run_id: int
    ads: int = 0
    groups: int = 0  # groups of two or more ads
    grouped_ads: int = 0
    links: dict[str, int] = field(default_factory=dict)  # merges per kind of evidence
    largest: int = 0
    params: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ads(store: Store) -> pa.Table:
    return store.arrow("""SELECT site, ad_id, coalesce(title, '') AS title, coalesce(body, '') AS body,
                                 coalesce(location, '') AS location, coalesce(phones, []) AS phones,
                                 coalesce(emails, []) AS emails, coalesce(image_hashes, []) AS images,
                                 coalesce(addresses, []) AS addresses
                          FROM ads ORDER BY site, ad_id""")


def _identifier_pairs(ads: pa.Table) -> list[tuple[int, int, str, str, float]]:
    """(i, j, kind, value, 1.0) linking each ad to the first ad that shows the same identifier."""
    pairs = []
    for kind, column in (("phone", "phones"), ("email", "emails"), ("image", "images")):
        first: dict[str, int] = {}
        for i, values in enumerate(ads[column].to_pylist()):
            for v in sorted(set(values or [])):
                if v in first:
                    pairs.append((first[v], i, kind, v, 1.0))
                else:
                    first[v] = i
    return pairs


_EMAIL = re.compile(r"\S+@\S+")
_DIGIT = re.compile(r"\d")


def masked_texts(ads: pa.Table) -> list[str]:
    """Title and body with e-mails, printed addresses and the ad's city removed and digits set to 0."""
    out = []
    for title, body, location, addresses in zip(ads["title"].to_pylist(), ads["body"].to_pylist(),
                                                 ads["location"].to_pylist(), ads["addresses"].to_pylist()):
        text = f"{title}\n{body}"
        for a in addresses or []:
            text = text.replace(a, " ")
        city = location.split(",")[0].strip()
        if city:
            text = re.sub(re.escape(city), " ", text, flags=re.IGNORECASE)
        text = _EMAIL.sub(" @ ", text)
        out.append(_DIGIT.sub("0", text))
    return out


def _text_pairs(ads: pa.Table, threshold: float) -> list[tuple[int, int, str, str, float]]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = masked_texts(ads)
    if len(texts) < 2:
        return []
    x = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, lowercase=False,
                        min_df=1).fit_transform(texts)  # rows are L2-normalised: x @ x.T is the cosine
    pairs = []
    for start in range(0, x.shape[0], 2000):
        block = (x[start:start + 2000] @ x.T).tocoo()
        keep = (block.data >= threshold) & (block.row + start < block.col)
        for r, c, v in zip(block.row[keep], block.col[keep], block.data[keep]):
            pairs.append((int(r + start), int(c), "text", f"{v:.3f}", float(v)))
    pairs.sort(key=lambda p: (-p[4], p[0], p[1]))
    return pairs


def _components(n: int, pairs: list[tuple[int, int, str, str, float]]) -> tuple[np.ndarray, list[int]]:
    """Union-find in the order given; returns each ad's root and the indexes of the merging pairs."""
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    merged = []
    for k, (i, j, *_rest) in enumerate(pairs):
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)  # the group is named by its first ad
            merged.append(k)
    return np.array([find(i) for i in range(n)]), merged


def identifier_groups(store: Store) -> dict[tuple[str, str], int]:
    """(site, ad_id) -> group (the index of its first ad, from 1) for ads sharing a phone, e-mail or photo;
    what the linker's consistency pass uses when ``tracer ads group`` has not run."""
    ads = _ads(store)
    root, _ = _components(len(ads), _identifier_pairs(ads))
    return {(s, a): int(r) + 1 for s, a, r in zip(ads["site"].to_pylist(), ads["ad_id"].to_pylist(), root.tolist())}


def group_ads(store: Store, params: GroupParams | None = None) -> GroupResult:
    """Group the ads of the store into operations; replaces ``ad_groups`` and ``ad_group_links``."""
    params = params or GroupParams()
    params.check()
    run = store.begin_run("ads-group", None, asdict(params))
    try:
        with store.transaction():
            result = _group(store, params, run.run_id)
        run.add(groups=result.groups, grouped_ads=result.grouped_ads)
        run.finish()
    except Exception as exc:
        run.fail(exc)
        raise
    return result


def _group(store: Store, params: GroupParams, run_id: int) -> GroupResult:
    ads = _ads(store)
    result = GroupResult(run_id, ads=len(ads), params=asdict(params))
    pairs = _identifier_pairs(ads)
    if params.use_text:
        pairs += _text_pairs(ads, params.text_threshold)
    root, merged = _components(len(ads), pairs)
    sites, ids = ads["site"].to_pylist(), ads["ad_id"].to_pylist()
    basis: dict[int, set[str]] = {}
    links = []
    for k in merged:
        i, j, kind, value, sim = pairs[k]
        basis.setdefault(int(root[i]), set()).add(kind)
        result.links[kind] = result.links.get(kind, 0) + 1
        links.append({"site_a": sites[i], "ad_a": ids[i], "site_b": sites[j], "ad_b": ids[j], "basis": kind,
                      "value": value, "similarity": sim, "run_id": run_id})
    sizes = np.bincount(root, minlength=len(ads))
    rows = [{"site": sites[i], "ad_id": ids[i], "group_id": int(root[i]) + 1, "size": int(sizes[root[i]]),
             "basis": ",".join(k for k in KINDS if k in basis.get(int(root[i]), set())), "run_id": run_id}
            for i in range(len(ads)) if sizes[root[i]] > 1]
    result.groups = int((sizes > 1).sum())
    result.grouped_ads = len(rows)
    result.largest = int(sizes.max()) if len(ads) else 0
    store.con.execute("DELETE FROM ad_groups")
    store.con.execute("DELETE FROM ad_group_links")
    if rows:
        store.append("ad_groups", pa.Table.from_pylist(rows, pa.schema([
            ("site", pa.string()), ("ad_id", pa.string()), ("group_id", pa.int64()), ("size", pa.int32()),
            ("basis", pa.string()), ("run_id", pa.int64())])))
    if links:
        store.append("ad_group_links", pa.Table.from_pylist(links, pa.schema([
            ("site_a", pa.string()), ("ad_a", pa.string()), ("site_b", pa.string()), ("ad_b", pa.string()),
            ("basis", pa.string()), ("value", pa.string()), ("similarity", pa.float64()), ("run_id", pa.int64())])))
    return result
