"""The plant side of the protocol: what runs inside the datasite when the dashboard calls `fl_step`.

- `policy`: the data owner's rules (DESIGN §9) and the pure checks of a request against them;
- `state`: `PlantState`, the one owner of the plant's state folder (keys, ledgers, FedDyn and SCAFFOLD terms);
- `handlers`: parse, check, do the work, release only aggregates;
- `scaffold`: SCAFFOLD's control variate c_i, kept at the plant; only its clipped change leaves.
"""
