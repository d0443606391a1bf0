"""The operators' webhook (DESIGN §10): sender.py posts the events, queue.py holds and debounces them."""
