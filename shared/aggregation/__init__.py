"""Aggregation algorithms behind one interface (Flower's strategy split: arithmetic in pure functions,
one small class per algorithm)."""

from shared.aggregation.base import Aggregator, ClientUpdate, get_aggregator
from shared.aggregation.fedavg import FedAvg, weighted_average

__all__ = ["Aggregator", "ClientUpdate", "FedAvg", "get_aggregator", "weighted_average"]
