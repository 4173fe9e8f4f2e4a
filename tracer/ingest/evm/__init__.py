"""EVM chains: a node over JSON-RPC (node.py, rpc.py, mapper.py, tokens.py), ethereum-etl exports (etl.py) and
the loader both share (load.py)."""
