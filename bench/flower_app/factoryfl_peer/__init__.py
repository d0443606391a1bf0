"""FactoryFL's round benchmark as a Flower App (bench/peers.py)."""
