"""Secure-aggregation cost benchmark (in-process; no PySyft): per-plant masking (quantize, pairwise keys,
ChaCha20 masks, Shamir shares, AES-GCM sealing), per-holder reveal, and the aggregator's unmasking, for
n plants and d parameters, with 0 and 1 dropouts (the dropout leaves after masking is set up, before it
sends: the aggregator then also removes its pairwise masks).

    .venv/bin/python bench/secagg.py [--plants 3 5 10] [--params 10000 100000 1000000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.table import print_table  # noqa: E402
from shared.secagg.keys import public_hex  # noqa: E402
from shared.secagg.protocol import RevealLedger, RoundSetup, mask_and_share, reveal, unmask  # noqa: E402
from shared.secagg.quantize import fraction_bits  # noqa: E402
from shared.secagg.shamir import default_threshold  # noqa: E402


def one(n: int, d: int, dropouts: int, workdir: Path) -> dict:
    keys = {f"plant-{i:02d}": X25519PrivateKey.generate() for i in range(n)}
    public = {k: public_hex(v) for k, v in keys.items()}
    bits = fraction_bits(n, 100.0)
    names = sorted(keys)
    setups = {me: RoundSetup(f"bench:{n}:{d}:{dropouts}", me, public, default_threshold(n), bits) for me in names}
    rng = np.random.default_rng(0)
    updates = {me: rng.normal(0, 0.01, d) for me in names}
    mask_s, sent = [], {}
    for me in names[dropouts:]:
        t0 = time.perf_counter()
        sent[me] = mask_and_share(setups[me], keys[me], updates[me])
        mask_s.append(time.perf_counter() - t0)
    survivors = sorted(sent)
    reveal_s, revealed = [], []
    for h in survivors:
        t0 = time.perf_counter()
        revealed.append(reveal(setups[h], keys[h], survivors, {u: sent[u].sealed[h] for u in survivors},
                               RevealLedger(workdir / h)))
        reveal_s.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    total = unmask(names, {u: sent[u].masked for u in survivors}, revealed, default_threshold(n), bits)
    unmask_s = time.perf_counter() - t0
    error = float(np.max(np.abs(total - sum(updates[u] for u in survivors))))
    t0 = time.perf_counter()
    plain = sum(updates[u] for u in survivors)  # what plaintext FedAvg does with the same vectors
    plain_s = time.perf_counter() - t0
    del plain
    return {"n": n, "d": d, "dropouts": dropouts, "mask_s": statistics.median(mask_s),
            "reveal_s": statistics.median(reveal_s), "unmask_s": unmask_s, "plain_s": plain_s, "error": error,
            "upload_mb": 8 * d / 2**20}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plants", type=int, nargs="+", default=[3, 5, 10])
    parser.add_argument("--params", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.plants:
            for d in args.params:
                for dropouts in (0, 1):
                    rows.append(one(n, d, dropouts, Path(tmp) / f"{n}-{d}-{dropouts}"))
    print(f"\nFactoryFL secure aggregation cost: {psutil.cpu_count()} CPU(s), one process, 64-bit ring, "
          "ChaCha20 masks, Shamir over GF(2^521-1), t = n/2 + 1")
    header = ("plants", "params", "dropouts", "mask+share per plant (s)", "reveal per holder (s)", "unmask (s)",
              "plaintext sum (s)", "masked upload (MiB)", "max error vs float sum")
    print_table(header, [[str(r["n"]), f"{r['d']:,}", str(r["dropouts"]), f"{r['mask_s']:.3f}", f"{r['reveal_s']:.4f}",
                          f"{r['unmask_s']:.3f}", f"{r['plain_s']:.4f}", f"{r['upload_mb']:.2f}", f"{r['error']:.1e}"]
                         for r in rows])
    return 0


if __name__ == "__main__":
    sys.exit(main())
