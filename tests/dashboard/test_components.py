"""Amounts on screen are the stored integers, digit for digit."""

from __future__ import annotations


from hypothesis import given
from hypothesis import strategies as st

from dashboard.components import address_href, format_amount


@given(st.integers(min_value=-(2**256), max_value=2**256), st.integers(min_value=0, max_value=30))
def test_displayed_amount_reads_back_to_the_stored_integer(value, decimals):
    text = format_amount(value, decimals)
    whole, _, frac = text.replace(",", "").partition(".")
    assert len(frac) == decimals
    assert int(whole + frac) == value                    # digit for digit, no float on the way


def test_satoshi_and_cents_render_with_their_unit():
    assert format_amount(19_500_000_000, 8, "BTC") == "195.00000000 BTC"
    assert format_amount(-1_000_000_000, 8) == "-10.00000000"
    assert format_amount(465_783, 2, "USD") == "4,657.83 USD"
    assert format_amount(7, 0, "wei") == "7 wei"


def test_address_links_escape_what_a_url_path_cannot_hold():
    assert address_href("fiat", "001120:8004ACD50") == "/address/fiat/001120:8004ACD50"
    assert address_href("bitcoin", "a/b?c#d") == "/address/bitcoin/a%2Fb%3Fc%23d"
