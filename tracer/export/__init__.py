"""Exports: the store's rows in other tools' formats (ethereum-etl, TagPacks) and, as they land, flow charts
and graph formats."""
