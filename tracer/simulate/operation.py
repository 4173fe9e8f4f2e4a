"""The trafficking operation on Bitcoin, and every ad-fee payment.

Story (one operation, ``operation-1``), in the order money moves:

1. The ad poster's wallet is funded by a withdrawal from an exchange hot wallet (Kestrel).
2. Each of the operation's ads is paid for in BTC at the posting time's price, from the poster's wallet
   (each payment spends the previous change: a chain of small payments to the sites' addresses), just
   before the ad appears — the Backpage pattern (Portnoff et al., KDD 2017). Independent authors' ads
   are paid from ordinary wallets, and *decoys* — unrelated payments of similar amounts to the same
   site within 90 minutes — make the match ambiguous, as it is in real data.
3. Customers (ordinary wallets) pay victims' wallets; some of the victims' addresses are printed in ads.
4. The controller collects the victims' coins in multi-input transactions (the victims' wallets are the
   controller's in all but name: common-input clustering is *right* to merge them).
5. The collections are consolidated and peeled: a chain of 1-input/2-output transactions, each paying a
   small amount out and sending the large remainder to a fresh address of the controller.
6. One peel goes through a Wasabi-shaped CoinJoin with ordinary wallets; the mixed coin and two peels
   are deposited to the operation's account at Kestrel, which sweeps them into its hot wallet.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from tracer.simulate.ads import Author
from tracer.simulate.coinjoin import WASABI_DENOMINATION, wasabi_shape
from tracer.simulate.ledger import P2PKH, P2SH, P2WPKH
from tracer.simulate.market import Prices
from tracer.simulate.scripted import Coin, Out, Scripted
from tracer.simulate.wallets import ACTOR, SERVICE, TX_SWEEP, TX_WASABI, Economy

SAT = 100_000_000


@dataclass
class OperationTruth:
    owners: dict[str, int] = field(default_factory=dict)  # actor name -> economy owner
    patterns: list[dict] = field(default_factory=list)  # {"pattern", "id", "txs": [...], "addrs": [...]}
    ad_fees: dict[str, tuple[int, int]] = field(default_factory=dict)  # ad_id -> (tx, sat)
    ad_payer: dict[str, int] = field(default_factory=dict)  # ad_id -> payer owner
    site_addrs: dict[str, list[int]] = field(default_factory=dict)
    victim_print_addr: dict[str, int] = field(default_factory=dict)
    exchange_deposits: list[dict] = field(default_factory=list)  # {"tx","value","time"}
    deposit_addr: int = -1
    sweeping_site: str | None = None  # the site whose processor sweeps fresh receiving addresses


def _sat(usd: float, btc_usd: float) -> int:
    return int(round(usd / btc_usd * SAT))


#: the payment processor quotes BTC at its own rate: the market's within about this share (sd)
PROCESSOR_RATE_SD = 0.003
#: share of independent ads next to which an ordinary wallet pays the site a fee-like amount (within 1 %)
DECOY_SHARE = 0.25
#: share of a site's blocks whose ads it posts in the order of their payments (else in random order)
POSTING_IN_ORDER = 0.85
#: share of an independent author's fee payments that spend the change of the author's previous one
CHANGE_REUSE = 0.7


def run_operation(scr: Scripted, econ: Economy, prices: Prices, authors: list[Author], ads: list[dict],
                  rng: np.random.Generator, start: dt.datetime, messy: np.random.Generator | None = None
                  ) -> OperationTruth:
    """The story above. With ``messy`` (a random stream of its own) each fee is converted at the payment
    processor's rate (the market price off by a fraction of a percent) instead of the market price, and
    ads marked ``paid_with`` = ``card`` get no Bitcoin payment."""
    o = econ.owners
    led = econ.ledger
    truth = OperationTruth()
    times = scr.times
    last_block = len(times) - 1

    def at_day(day: float) -> int:
        return scr.block_at(np.datetime64(start, "us") + np.timedelta64(int(day * 86400e6), "us"))

    # -- actors -----------------------------------------------------------------------------------
    from tracer.simulate.ads import SITES

    for k, (site, _slug) in enumerate(SITES):
        sid = o.add(SERVICE, k, P2PKH if k % 2 == 0 else P2SH, f"{site} (ad site)")
        truth.owners[f"site:{site}"] = sid
        truth.site_addrs[site] = led.new_addresses(np.full(5, sid), np.full(5, o.script[sid])).tolist()
    controller = o.add(ACTOR, 0, P2WPKH, "operation-1 controller")
    poster = o.add(ACTOR, 0, P2PKH, "operation-1 ad poster", software=1)
    victims = [o.add(ACTOR, 0, P2WPKH, f"operation-1 victim-{k + 1}") for k in range(4)]
    truth.owners.update({"operation-1:controller": controller, "operation-1:ad-poster": poster})
    for k, v in enumerate(victims):
        truth.owners[f"operation-1:victim-{k + 1}"] = v
        truth.victim_print_addr[f"victim-{k + 1}"] = int(led.new_addresses([v], [P2WPKH])[0])
    kestrel_dep = econ.exch_dep[0]
    truth.deposit_addr = int(led.new_addresses([kestrel_dep], [o.script[kestrel_dep]])[0])
    for a in authors:
        if a.operation:
            a.wallet_owner = poster

    # -- 1. fund the ad poster from Kestrel's hot wallet ------------------------------------------
    op_ads = [ad for ad in ads if ad["author"].operation]
    fund_block = at_day(0.2)
    need = sum(_sat(ad["fee_usd"], float(prices.usd("BTC", ad["when"]))) for ad in op_ads) * 2 + 300_000
    hot = scr.background_coins(1, fund_block, need + 2_000_000, owner=econ.exch_hot[0], distinct=False)
    if not hot:
        raise RuntimeError("the exchange hot wallet has no coin to fund the operation")
    others = [Out(int(u), int(rng.integers(100_000, 1_000_000))) for u in econ.pick_payees(3)]
    fund_tx, fund_out = scr.tx(fund_block, hot, [Out(poster, need), *others,
                                                 Out(econ.exch_hot[0], None, addr=int(econ.hot_addrs[0][0]))],
                               econ.exch_hot[0], "exchange withdrawal to the ad poster")
    poster_coin = fund_out[0]
    truth.patterns.append({"pattern": "exchange_withdrawal", "id": "operation-1/funding", "txs": [fund_tx],
                           "addrs": [poster_coin.addr]})

    # -- 2. ad fees (operation, independent authors) and decoys -----------------------------------
    fee_txs, decoy_txs = [], []
    # a sweeping site (its processor takes each payment on a fresh address and sweeps them into the
    # labelled hot wallet): picked from the messy stream, so a clean world has none
    sweeping = SITES[int(messy.integers(len(SITES)))][0] if messy is not None else None
    truth.sweeping_site = sweeping
    received: list[Coin] = []  # the sweeping site's receiving coins, swept after the fees

    def pay_to(site: str, value: int) -> Out:
        owner = truth.owners[f"site:{site}"]
        if site == sweeping:
            return Out(owner, value)  # a fresh receiving address
        return Out(owner, value, addr=int(rng.choice(truth.site_addrs[site])))

    def decoy(site: str, block: int, fee: int, spread: float, stream: np.random.Generator) -> None:
        db = min(max(block + int(stream.integers(-2, 3)), 0), last_block)
        coin = scr.background_coins(1, db, fee * 2 + 40_000)
        if coin:
            amount = int(fee * stream.uniform(1 - spread, 1 + spread))
            dtx, douts = scr.tx(db, coin, [pay_to(site, amount), Out(coin[0].owner)], coin[0].owner,
                                "decoy site payment")
            decoy_txs.append(dtx)
            if site == sweeping:
                received.append(douts[0])

    change_of: dict[str, Coin] = {}  # an independent author's last change
    for ad in ads:
        b = scr.block_at(ad["when"])
        ad["posted_at"] = (times[b] + np.timedelta64(int(rng.integers(120, 900)), "s")).astype(
            "datetime64[us]").astype(dt.datetime)
        btc_usd = float(prices.usd("BTC", times[b]))
        if messy is not None:
            btc_usd *= 1 + float(np.clip(messy.normal(0, PROCESSOR_RATE_SD), -0.008, 0.008))
            if ad.get("paid_with") == "card":
                continue
        fee = _sat(ad["fee_usd"], btc_usd)
        ad["fee_sat"] = fee
        a = ad["author"]
        if a.operation:
            tx, outs = scr.tx(b, [poster_coin], [pay_to(ad["site"], fee), Out(poster)], poster,
                              f"ad fee {ad['ad_id']}")
            poster_coin = outs[1]
            fee_txs.append(tx)
            truth.ad_payer[ad["ad_id"]] = poster
            # decoys: unrelated payments of similar amounts to the same site around the same time
            for _ in range(2):
                decoy(ad["site"], b, fee, 0.05, rng)
        else:
            if a.wallet_owner < 0:
                a.wallet_owner = int(econ.pick_payees(1)[0])
            # the author's wallet spends the change of its last fee payment when its coin selection picks
            # it (topped up with another coin when the change is short), else one of its other coins
            coin = []
            last = change_of.get(a.author_id)
            if last is not None and messy is not None and messy.random() < CHANGE_REUSE:
                coin = [last]
            if sum(c.value for c in coin) < fee * 2 + 40_000:
                more = scr.background_coins(1, b, fee * 2 + 40_000, owner=a.wallet_owner) \
                    or scr.background_coins(1, b, fee * 2 + 40_000)
                coin = coin + more if more else []
            if not coin:
                continue
            tx, outs = scr.tx(b, coin, [pay_to(ad["site"], fee), Out(coin[0].owner)], coin[0].owner,
                              f"ad fee {ad['ad_id']}")
            change_of[a.author_id] = outs[1]
            truth.ad_payer[ad["ad_id"]] = coin[0].owner
            # ordinary payments of fee-like amounts (within the processor's spread) at the same minutes
            if messy is not None and messy.random() < DECOY_SHARE:
                decoy(ad["site"], b, fee, 0.01, messy)
        if ad["site"] == sweeping:
            received.append(outs[0])
        truth.ad_fees[ad["ad_id"]] = (tx, fee)
    if messy is not None:
        # a site posts an ad when its payment confirms, its processor walking the block in block order (a
        # payment before the one spending its change): the ads paid in one block go up in payment order —
        # usually; in a share of the (site, block) queues the order is lost (parallel workers, retries)
        queues: dict[tuple[str, int], list[dict]] = {}
        for ad in ads:
            if ad["ad_id"] in truth.ad_fees:
                queues.setdefault((ad["site"], scr.block_at(ad["when"])), []).append(ad)
        for queue in queues.values():
            if len(queue) > 1 and messy.random() < POSTING_IN_ORDER:
                posted = sorted(ad["posted_at"] for ad in queue)
                for ad, when in zip(sorted(queue, key=lambda ad: truth.ad_fees[ad["ad_id"]][0]), posted):
                    ad["posted_at"] = when
    truth.patterns.append({"pattern": "ad_fee_payments", "id": "operation-1/ad-fees", "txs": fee_txs,
                           "ads": [ad["ad_id"] for ad in op_ads], "addrs": []})
    truth.patterns.append({"pattern": "decoy_payments", "id": "operation-1/decoys", "txs": decoy_txs, "addrs": []})
    if sweeping is not None:
        # the processor sweeps every few payments (2 to 6) into one of the site's labelled addresses: a
        # transaction of all those inputs and one output, no change
        received.sort(key=lambda c: (c.block, c.tx))
        owner = truth.owners[f"site:{sweeping}"]
        sweeps, k = [], 0
        while k < len(received):
            batch = received[k:k + int(messy.integers(2, 7))]
            k += len(batch)
            if len(received) - k == 1:  # no lone payment left for the last sweep
                batch.append(received[k])
                k += 1
            b = min(max(c.block for c in batch) + int(messy.integers(1, 4)), last_block)
            hot_addr = int(truth.site_addrs[sweeping][int(messy.integers(len(truth.site_addrs[sweeping])))])
            # at a low fee rate: a processor's sweep is in no hurry
            stx, _ = scr.tx(b, batch, [Out(owner, None, addr=hot_addr)], owner, f"{sweeping} sweeps its receiving "
                            "addresses", feerate=2.0, kind=TX_SWEEP)
            sweeps.append(stx)
        truth.patterns.append({"pattern": "site_sweeps", "id": f"{sweeping}/sweeps", "txs": sweeps,
                               "addrs": sorted({c.addr for c in received}), "actor": f"site:{sweeping}"})

    # -- 3. customers pay the victims -------------------------------------------------------------
    earn_txs = []
    victim_coins: list[Coin] = []
    for k, v in enumerate(victims):
        printed = truth.victim_print_addr[f"victim-{k + 1}"]
        for _ in range(16):
            day = float(rng.uniform(0.5, 24.5))
            b = at_day(day)
            usd = float(rng.choice([150, 200, 250, 300, 400, 500, 600]))
            amount = _sat(usd, float(prices.usd("BTC", times[b])))
            coin = scr.background_coins(1, b, amount + 60_000)
            if not coin:
                continue
            dest = Out(v, amount, addr=printed) if rng.random() < 0.6 else Out(v, amount)
            tx, outs = scr.tx(b, coin, [dest, Out(coin[0].owner)], coin[0].owner, f"customer payment to victim-{k + 1}")
            earn_txs.append(tx)
            victim_coins.append(outs[0])
    truth.patterns.append({"pattern": "victim_earnings", "id": "operation-1/earnings", "txs": earn_txs,
                           "addrs": sorted({c.addr for c in victim_coins})})

    # -- 4. the controller collects ----------------------------------------------------------------
    collect_txs, collected = [], []
    pending = sorted(victim_coins, key=lambda c: (c.block, c.tx))
    for day in (7, 14, 21, 25):
        b = at_day(day)
        take = [c for c in pending if c.block <= b]
        pending = [c for c in pending if c.block > b]
        if not take:
            continue
        tx, outs = scr.tx(b, take, [Out(controller)], controller, f"collection day {day}")
        collect_txs.append(tx)
        collected.append(outs[0])
    truth.patterns.append({"pattern": "collection", "id": "operation-1/collection", "txs": collect_txs,
                           "addrs": sorted({c.addr for c in victim_coins} | {c.addr for c in collected})})

    # -- 5./6. consolidation, peeling chain, CoinJoin, exchange deposits ----------------------------
    b = max(at_day(25.3), max(c.block for c in collected))
    cons_tx, cons_out = scr.tx(b, collected, [Out(controller)], controller, "consolidation before peeling")
    gap = max(1, at_day(25.3 + 2 / 24) - at_day(25.3))
    current = cons_out[0]
    peel_txs, peel_addrs, deposits = [cons_tx], [current.addr], []
    mix_coin = None
    hops = 10
    for i in range(hops):
        b = min(current.block + gap, last_block)
        if i == 4 and current.value > WASABI_DENOMINATION * 1.3:
            pay = Out(controller, int(WASABI_DENOMINATION * 1.03) + 250_000)  # to be mixed
        elif i in (2, 7):
            pay = Out(kestrel_dep, int(current.value * rng.uniform(0.05, 0.09)), addr=truth.deposit_addr)
        else:
            pay = Out(int(econ.pick_payees(1)[0]), int(current.value * rng.uniform(0.04, 0.08)))
        tx, outs = scr.tx(b, [current], [pay, Out(controller)], controller, f"peel hop {i + 1}")
        peel_txs.append(tx)
        peel_addrs.append(outs[1].addr)
        if pay.addr == truth.deposit_addr:
            deposits.append(outs[0])
        if pay.owner == controller:
            mix_coin = outs[0]
        current = outs[1]
    truth.patterns.append({"pattern": "peeling_chain", "id": "operation-1/peeling-chain", "txs": peel_txs,
                           "addrs": peel_addrs})

    leftover: list[Coin] = []
    if mix_coin is not None:
        cj_block = min(mix_coin.block + 1, last_block)
        parts = scr.background_coins(14, cj_block, int(WASABI_DENOMINATION * 1.03) + 200_000)
        coins = [mix_coin, *parts]
        rng.shuffle(coins)
        sizes = np.array([len(coins)])
        shape = wasabi_shape(rng, np.array([c.value for c in coins], np.int64), sizes, econ.feerates(1))
        outs = []
        for c, mixed, change in zip(coins, shape["mixed"], shape["change"]):
            outs.append(Out(c.owner, int(mixed), script=P2WPKH))
            if change:
                outs.append(Out(c.owner, int(change), script=P2WPKH))
        outs.append(Out(econ.wasabi, int(shape["coord_fee"][0]), addr=int(econ.wasabi_addrs[0])))
        order = rng.permutation(len(outs))
        outs = [outs[i] for i in order]
        cj_tx, cj_outs = scr.tx(cj_block, coins, outs, econ.wasabi, "coinjoin (Wasabi-shaped)", kind=TX_WASABI,
                                fee=int(shape["fee"][0]))
        mine = [c for c in cj_outs if c.owner == controller]
        mixed = next(c for c in mine if c.value == int(shape["denomination"][0]))
        truth.patterns.append({"pattern": "coinjoin", "id": "operation-1/coinjoin", "txs": [cj_tx],
                               "addrs": [c.addr for c in mine], "participants": len(coins)})
        b = min(cj_block + 2 * gap, last_block)
        dtx, douts = scr.tx(b, [mixed], [Out(kestrel_dep, None, addr=truth.deposit_addr)], controller,
                            "post-mix deposit to Kestrel")
        deposits.append(douts[0])
        leftover = [c for c in mine if c is not mixed]
        if leftover:
            _, merged = scr.tx(min(b + gap, last_block), [*leftover, current], [Out(controller)], controller,
                               "coinjoin change merged with the peel remainder (a privacy mistake)")
            current = merged[0]
    b = min(current.block + gap, last_block)
    _, last = scr.tx(b, [current], [Out(kestrel_dep, None, addr=truth.deposit_addr)], controller,
                     "peel remainder deposited to Kestrel")
    deposits.append(last[0])
    # Kestrel sweeps the operation's deposits with other customers' into its hot wallet
    sweep_block = min(max(c.block for c in deposits) + gap, last_block)
    other = scr.background_coins(20, sweep_block, 1, owner=kestrel_dep, distinct=False)
    sweep_tx, _ = scr.tx(sweep_block, deposits + other,
                         [Out(econ.exch_hot[0], None, addr=int(econ.hot_addrs[0][1]))], kestrel_dep,
                         "Kestrel sweeps deposit addresses", kind=TX_SWEEP)
    for c in deposits:
        truth.exchange_deposits.append({"tx": c.tx, "value": c.value, "block": c.block})
    truth.patterns.append({"pattern": "exchange_deposit", "id": "operation-1/kestrel-deposits",
                           "txs": sorted({c.tx for c in deposits}) + [sweep_tx], "addrs": [truth.deposit_addr]})
    return truth
