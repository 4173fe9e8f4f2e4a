"""Labels: OFAC SDN lists, GraphSense TagPacks and CSV label files."""
