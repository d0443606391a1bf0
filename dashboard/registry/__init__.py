"""The plant registry (DESIGN §4): who a plant is, how it enrols and registers, its heartbeats and their store,
its certificate and address, the configured plants, and the floor report its heartbeat carries."""
