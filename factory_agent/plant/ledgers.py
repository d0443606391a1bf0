"""The plant's ledgers (DESIGN §9): what its policy must remember across calls, in one SQLite file of its state
folder, so that every check-and-record is one transaction even when PySyft runs calls concurrently:
- calls (the hourly cap, and per experiment:round:attempt caps),
- trained rounds (one round per global model), masks (one masking per experiment:round:attempt, with the setup
  it masked under), reveals (one survivor list per attempt, one attempt per round),
- pinned model inputs per experiment,
- the DP-SGD ledger across all experiments and its running RDP curves (the lifetime budget).

`PlantLedgers` is a part of `PlantState` (factory_agent.plant.state), which owns the folder and the file's path.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from factory_agent.sqlite_store import immediate_transaction
from factory_agent.plant.policy import PlantPolicy
from shared.errors import PolicyRefusal
from shared.privacy.accounting import ORDERS, epsilon_of_rdp, rdp_curve

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (at REAL NOT NULL, op TEXT NOT NULL, experiment INTEGER, round INTEGER,
                                  attempt INTEGER);
CREATE INDEX IF NOT EXISTS calls_at ON calls (at);
CREATE INDEX IF NOT EXISTS calls_key ON calls (op, experiment, round, attempt);
CREATE TABLE IF NOT EXISTS masks (context TEXT PRIMARY KEY, setup TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS reveals (context TEXT PRIMARY KEY, survivors TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS pinned (experiment INTEGER PRIMARY KEY, digest TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chains (experiment INTEGER PRIMARY KEY, digest TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sums (base TEXT PRIMARY KEY, survivors TEXT NOT NULL, context TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dp_ledger (id INTEGER PRIMARY KEY AUTOINCREMENT, experiment INTEGER NOT NULL,
                                      noise_multiplier REAL NOT NULL, sample_rate REAL NOT NULL,
                                      steps INTEGER NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS call_counts (op TEXT NOT NULL, experiment INTEGER NOT NULL, round INTEGER NOT NULL,
                                        attempt INTEGER NOT NULL, n INTEGER NOT NULL,
                                        PRIMARY KEY (op, experiment, round, attempt));
CREATE TABLE IF NOT EXISTS trained_rounds (experiment INTEGER NOT NULL, digest TEXT NOT NULL, round INTEGER NOT NULL,
                                         PRIMARY KEY (experiment, digest));
CREATE TABLE IF NOT EXISTS dp_rdp (scope TEXT PRIMARY KEY, rdp TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS revocations (id INTEGER PRIMARY KEY CHECK (id = 1), serial INTEGER NOT NULL,
                                        document TEXT NOT NULL);
"""


class PlantLedgers:
    """The checks and records of the plant's ledger file at `ledger_path`."""

    ledger_path: Path

    def _ledger(self):
        """One IMMEDIATE transaction: concurrent calls serialise on the write lock, so a check and its
        record cannot interleave with another call's."""
        return immediate_transaction(self.ledger_path, _SCHEMA)

    def record_call(self, policy: PlantPolicy, op: str, experiment: int, round_: int | None = None,
                    attempt: int | None = None, per_key_limit: int | None = None) -> None:
        """Count this call; PolicyRefusal past the hourly cap, or past `per_key_limit` calls of this op for this
        (experiment, round, attempt) ever (those counts are never pruned)."""
        now = time.time()
        with self._ledger() as db:
            db.execute("DELETE FROM calls WHERE at < ?", (now - 3600,))
            (recent,) = db.execute("SELECT COUNT(*) FROM calls").fetchone()
            if recent >= policy.max_calls_per_hour:
                raise PolicyRefusal(f"{recent} calls in the last hour; this plant allows {policy.max_calls_per_hour}")
            db.execute("INSERT INTO calls VALUES (?, ?, ?, ?, ?)", (now, op, experiment, round_, attempt))
            if per_key_limit is not None:
                key = (op, experiment, -1 if round_ is None else round_, -1 if attempt is None else attempt)
                row = db.execute("SELECT n FROM call_counts WHERE op = ? AND experiment = ? AND round = ? "
                                 "AND attempt = ?", key).fetchone()
                if row and row[0] >= per_key_limit:
                    where = f"experiment {experiment}" + (f" round {round_}" if round_ is not None else "") + \
                        (f" attempt {attempt}" if attempt is not None else "")
                    raise PolicyRefusal(f"{op} was already called {row[0]} time(s) for {where}; this plant "
                                        f"allows {per_key_limit}")
                db.execute("INSERT INTO call_counts VALUES (?, ?, ?, ?, 1) ON CONFLICT (op, experiment, round, "
                           "attempt) DO UPDATE SET n = n + 1", key)

    def claim_training(self, experiment: int, round_: int, weights_digest: str) -> None:
        """A plant trains from given global weights in one round of an experiment only (its attempts may retry):
        the same model in two rounds, under different cohorts, would let the aggregator difference two secure
        sums (a second sum of the same round is refused at the reveal)."""
        with self._ledger() as db:
            row = db.execute("SELECT round FROM trained_rounds WHERE experiment = ? AND digest = ?",
                             (experiment, weights_digest)).fetchone()
            if row and row[0] != round_:
                raise PolicyRefusal(f"this plant already trained from these global weights in round {row[0]} of "
                                    f"experiment {experiment}; it trains from a model in one round only")
            if not row:
                db.execute("INSERT INTO trained_rounds VALUES (?, ?, ?)", (experiment, weights_digest, round_))

    def trained_in(self, experiment: int) -> bool:
        """Whether this plant trained in any round of the experiment (only such an experiment is personalized)."""
        with self._ledger() as db:
            return db.execute("SELECT 1 FROM trained_rounds WHERE experiment = ? LIMIT 1",
                              (experiment,)).fetchone() is not None

    def claim_mask(self, context: str, setup: dict) -> None:
        """At most one masking per experiment:round:attempt, ever: masking twice under one context (say once
        with a near-zero learning rate) and revealing both self masks would give the difference of two
        updates in the clear."""
        with self._ledger() as db:
            if db.execute("SELECT 1 FROM masks WHERE context = ?", (context,)).fetchone():
                raise PolicyRefusal(f"this plant already masked an update for {context} "
                                    "(experiment:round:attempt); it masks once per attempt")
            db.execute("INSERT INTO masks VALUES (?, ?, ?)", (context, json.dumps(setup, sort_keys=True), time.time()))

    def masked_setup(self, context: str) -> dict | None:
        with self._ledger() as db:
            row = db.execute("SELECT setup FROM masks WHERE context = ?", (context,)).fetchone()
        return json.loads(row[0]) if row else None

    def record_reveal(self, context: str, survivors: list[str], base: str | None = None) -> None:
        """One survivor list per attempt (never the self-mask shares and the pairwise shares of one plant), and
        one attempt per round (never two sums of one round over different cohorts). With `base` (the digest of the
        model the plant trained from, under verify_models): one survivor list per base model across experiments,
        so that a second experiment from the same seed over all members but one (a twin) cannot be summed and
        subtracted from the first."""
        listed = json.dumps(sorted(survivors))
        round_prefix = context.rsplit(":", 1)[0] + ":"
        with self._ledger() as db:
            if base is not None:
                summed = db.execute("SELECT survivors, context FROM sums WHERE base = ?", (base,)).fetchone()
                if summed and summed[0] != listed:
                    raise PolicyRefusal(f"this plant already revealed a sum over {json.loads(summed[0])} trained "
                                        f"from this same model ({summed[1]}): a sum over {sorted(survivors)} from "
                                        "it would differ by single updates; start the experiment from another seed")
                if not summed:
                    db.execute("INSERT INTO sums VALUES (?, ?, ?)", (base, listed, context))
            other = db.execute("SELECT context FROM reveals WHERE substr(context, 1, ?) = ? AND context != ?",
                               (len(round_prefix), round_prefix, context)).fetchone()
            if other:  # two unmasked sums of one round over different cohorts differ by single updates
                raise PolicyRefusal(f"this plant already revealed shares for {other[0]}: it reveals for one "
                                    "attempt of a round")
            row = db.execute("SELECT survivors FROM reveals WHERE context = ?", (context,)).fetchone()
            if row and row[0] != listed:
                raise PolicyRefusal(f"asked to reveal shares for {context} with survivors {sorted(survivors)} after "
                                    f"answering for {json.loads(row[0])}: refused (it could unmask a single plant)")
            if not row:
                db.execute("INSERT INTO reveals VALUES (?, ?, ?)", (context, listed, time.time()))

    def pin_inputs(self, experiment: int, digest: str) -> None:
        """The first model inputs (features, scaler, model family) seen for an experiment are the only ones
        this plant accepts for it afterwards."""
        self._pin("pinned", experiment, digest, "changed its features, scaler or model family after its first call "
                                                "to this plant")

    def pin_chain(self, experiment: int, digest: str) -> None:
        """What a verified chain is pinned to (factory_agent.plant.verification) is kept for good, beside the chain
        folder that the plant prunes: an experiment whose chain was pruned is never pinned again to another seed,
        strategy or model (which would turn its members' old transcripts into a model no one trained)."""
        self._pin("chains", experiment, digest, "was pinned at round 0 to another seed, strategy or model before")

    def _pin(self, table: str, experiment: int, digest: str, why: str) -> None:
        """The first digest recorded for an experiment in `table` (pinned or chains: this module's names) is the
        only one accepted for it, for good."""
        with self._ledger() as db:
            row = db.execute(f"SELECT digest FROM {table} WHERE experiment = ?", (experiment,)).fetchone()
            if row and row[0] != digest:
                raise PolicyRefusal(f"experiment {experiment} {why}: refused")
            if not row:
                db.execute(f"INSERT INTO {table} VALUES (?, ?)", (experiment, digest))

    def reserve_dp(self, policy: PlantPolicy, experiment: int, step: tuple[float, float, int], delta: float,
                   target_epsilon: float) -> tuple[list, float, float]:
        """Check and record one DP-SGD round before it runs (a failed round stays spent: conservative).

        The RDP curves of this experiment and of the plant's whole life are kept as running totals over
        Opacus's orders, so a check costs the same however long the ledger is (RDP composes by addition:
        Mironov 2017, Prop. 1). Returns (this experiment's steps, its epsilon at `delta`, the lifetime epsilon
        at the policy's delta), all including the new step."""
        sigma, rate, steps = step
        added = rdp_curve(sigma, rate, steps)
        scopes = ("lifetime", f"experiment:{experiment}")
        with self._ledger() as db:
            curves = {}
            for scope in scopes:
                row = db.execute("SELECT rdp FROM dp_rdp WHERE scope = ?", (scope,)).fetchone()
                curves[scope] = (np.asarray(json.loads(row[0])) if row else np.zeros(len(ORDERS))) + added
            total = epsilon_of_rdp(curves["lifetime"], policy.dp_delta)
            if total > policy.lifetime_epsilon:
                raise PolicyRefusal(f"privacy budget exhausted: this round would bring the plant's lifetime epsilon "
                                    f"to {total:.3f} > its budget {policy.lifetime_epsilon} (all experiments, "
                                    f"delta {policy.dp_delta})")
            projected = epsilon_of_rdp(curves[scopes[1]], delta)
            if projected > target_epsilon:
                raise PolicyRefusal(f"privacy budget exhausted: this round would bring the plant's epsilon for "
                                    f"experiment {experiment} to {projected:.3f} > target {target_epsilon} "
                                    f"(delta {delta})")
            for scope in scopes:
                db.execute("INSERT INTO dp_rdp VALUES (?, ?) ON CONFLICT (scope) DO UPDATE SET rdp = excluded.rdp",
                           (scope, json.dumps(curves[scope].tolist())))
            db.execute("INSERT INTO dp_ledger (experiment, noise_multiplier, sample_rate, steps, at) "
                       "VALUES (?, ?, ?, ?, ?)", (experiment, sigma, rate, steps, time.time()))
            mine = [(s_, q, n) for s_, q, n in db.execute(
                "SELECT noise_multiplier, sample_rate, steps FROM dp_ledger WHERE experiment = ? ORDER BY id",
                (experiment,))]
        return mine, float(projected), float(total)

    def newest_revocations(self, offered: dict | None, serial: int | None) -> dict | None:
        """The newest revocation list this plant has seen (its wire form), after keeping `offered` when its serial
        is higher than the kept one's; an older one offered changes nothing (no roll-back). The caller has
        checked `offered`'s signature (factory_agent.plant.membership)."""
        with self._ledger() as db:
            row = db.execute("SELECT serial, document FROM revocations WHERE id = 1").fetchone()
            if offered is not None and (row is None or serial > row[0]):
                db.execute("INSERT OR REPLACE INTO revocations (id, serial, document) VALUES (1, ?, ?)",
                           (serial, json.dumps(offered)))
                return offered
        return json.loads(row[1]) if row is not None else None
