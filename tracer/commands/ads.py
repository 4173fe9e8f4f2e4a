"""`tracer ads`: link ads to their fee payments, explain a link, group ads into operations."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from tracer.commands.checks import open_workspace_at, text_file


def register(app: typer.Typer, ingest_app: typer.Typer) -> None:
    ads_app = typer.Typer(no_args_is_help=True, help="Ads: link them to their fee payments, group them by author.")
    app.add_typer(ads_app, name="ads")

    @ads_app.command("link")
    def link(
        ctx: typer.Context,
        fees: Path = typer.Option(None, "--fees", metavar="FILE",
                                  help="Fee schedule CSV: site,location,fee_usd[,valid_from,valid_to] (location * is "
                                       "the site's default). Without it only ads with their own fee_usd are linked."),
        window: float = typer.Option(180.0, "--window", metavar="MINUTES",
                                     help="The payment's block time within this many minutes of the posting."),
        tolerance: float = typer.Option(0.01, "--tolerance",
                                        help="The payment's USD value within this share of the fee (0.01 = 1 %)."),
        group_boost: float = typer.Option(0.5, "--group-boost",
                                          help="Weight of the consistency pass (payers of the ad's author group)."),
        min_score: float = typer.Option(0.05, "--min-score", help="Accept no link scoring below this."),
        margin: float = typer.Option(0.05, "--margin",
                                     help="Accept no link whose regret (how much worse the competing ads and payments "
                                          "are explained without it) is below this: not separable."),
        order_weight: float = typer.Option(0.1, "--order-weight",
                                           help="Weight of the posting order: the ad posted first takes the payment "
                                                "made first, where one payment spends the other's change."),
        chain: str = typer.Option("bitcoin", "--chain"),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Link each ad to the payment of its posting fee (at most one payment per ad and one ad per payment)."""
        from heuristics.ads import LinkParams, read_fee_schedule

        params = LinkParams(window_minutes=window, tolerance=tolerance, min_score=min_score,
                            group_boost=group_boost, margin=margin, order_weight=order_weight, chain=chain)
        params.check()
        schedule = read_fee_schedule(text_file(fees, "CSV file")) if fees is not None else None
        with open_workspace_at(ctx.obj["db"]) as ws:
            from heuristics.ads import link_ads

            result = link_ads(ws.store, schedule, params)
        if as_json:
            print(json.dumps(result.as_dict()))
            return
        addrs = ", ".join(f"{n:,} by {b}" for b, n in sorted(result.site_addresses.items())) or "none"
        print(f"ads link run {result.run_id}: {result.ads:,} ads, {result.ads_with_fee:,} with a known fee; site "
              f"addresses: {addrs}; {result.candidates:,} candidate payments for {result.ads_with_candidates:,} ads; "
              f"{result.linked:,} linked ({result.changed_by_groups:,} changed by the author-group pass, "
              f"{result.abstained:,} not separable from an alternative)")
        if not result.site_addresses:
            print("note: no labelled address names an ad site: ingest the sites' addresses as labels "
                  "(label or actor naming the site), then link again")

    @ads_app.command("explain")
    def explain(
        ctx: typer.Context,
        ad: str = typer.Argument(..., help="An ad id."),
        site: str = typer.Option(None, "--site", help="The ad's site, where ad ids repeat across sites."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """The ad's fee, the price used, its candidate payments with their scores, and why the chosen one won."""
        with open_workspace_at(ctx.obj["db"], read_only=True) as ws:
            e = ws.explain_ad(ad, site)
        if as_json:
            print(json.dumps(e.as_dict()))
            return
        fee = f"{e.fee_usd:g} USD ({e.fee_source})" if e.fee_usd is not None else "unknown"
        print(f"ad {e.site} {e.ad_id}, posted {e.posted_at} UTC in {e.location or '?'}; fee {fee}")
        if e.link:
            price = f" at {e.price_btc_usd:,.2f} USD/BTC" if e.price_btc_usd else ""
            print(f"linked: {e.link['chain']} {e.link['txid']}:{e.link['n']}{price}, score {e.link['score']:.3f}")
        else:
            print("not linked")
        for c in e.candidates:
            mark = "*" if c["chosen"] else " "
            taken = f"  (linked to {c['taken_by']})" if c["taken_by"] else ""
            print(f" {mark}{c['rank']:>3}. {c['txid']}:{c['n']}  {c['usd']:.2f} USD ({c['rel_error'] * 100:+.2f} %)  "
                  f"{c['minutes']:+.0f} min  amount {c['amount_score']:.3f} × time {c['time_score']:.3f}"
                  f" {c['order_bonus']:+.3f} order {c['group_boost']:+.3f} group = {c['score']:.3f}  payer {c['payer']}{taken}"
                  + (f"  regret {c['regret']:.3f}" if c["regret"] is not None else ""))
        print(f"why: {e.why}")

    @ads_app.command("group")
    def group(
        ctx: typer.Context,
        text_threshold: float = typer.Option(0.8, "--text-threshold",
                                             help="Link two ads whose masked texts' TF-IDF cosine reaches this."),
        no_text: bool = typer.Option(False, "--no-text", help="Only phones, e-mails and photos."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Group ads into operations by shared phones, e-mails, photos and writing style."""
        from heuristics.ads import GroupParams

        GroupParams(text_threshold=text_threshold, use_text=not no_text).check()
        with open_workspace_at(ctx.obj["db"]) as ws:
            result = ws.group_ads(text_threshold=text_threshold, use_text=not no_text)
        if as_json:
            print(json.dumps(result.as_dict()))
            return
        links = ", ".join(f"{k} {v:,}" for k, v in result.links.items()) or "none"
        print(f"ads group run {result.run_id}: {result.ads:,} ads, {result.grouped_ads:,} in {result.groups:,} groups "
              f"of two or more (largest {result.largest:,}); merges by {links}")
