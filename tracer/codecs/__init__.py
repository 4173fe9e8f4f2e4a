"""Codecs shared by ingest, the simulator and the heuristics: Bitcoin address encodings and the identifiers
found in reports and ads (addresses, IBANs, phones, e-mail)."""
