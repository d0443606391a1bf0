"""JSON blueprints: the factory endpoints of DESIGN §4 and the experiments API of §5."""
