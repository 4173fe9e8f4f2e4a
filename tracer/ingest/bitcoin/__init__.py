"""Bitcoin: Bitcoin Core blk files and raw blocks (blocks.py), the columnar parser (parse.py), networks and
the JSON-RPC source (rpc.py)."""
