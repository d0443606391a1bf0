"""The model at work on the plant floor (DESIGN §10): the released model delivered and verified
(`delivery`), new data scored with it (`scoring`: files dropped into `--watch-dir` by `watch`, a live simulated
stream by `stream`, a loopback endpoint for plant systems by `server`), alerts per machine (`alerts`), a drift
score (`drift`), all kept at the plant in SQLite (`store`); `service.PlantFloor` wires them for the agent.

Nothing here imports torch until a model scores (a plant at rest stays lean)."""
