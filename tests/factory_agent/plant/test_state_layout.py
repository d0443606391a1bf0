"""PlantState's module is the one owner of the state folder's layout: no other agent module builds a path in it."""

import ast
from pathlib import Path

from factory_agent.plant import state

PACKAGE = Path(state.__file__).resolve().parents[1]


def paths_built_on_a_state_folder(source: str) -> list[str]:
    """`<something named state...> / "literal"` (or / A_CONSTANT), or os.path.join(<state...>, ...) in `source`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            left, right = node.left, node.right
        elif isinstance(node, ast.Call) and ast.unparse(node.func) == "os.path.join" and len(node.args) >= 2:
            left, right = node.args[0], node.args[1]
        else:
            continue
        named = ((isinstance(right, ast.Constant) and isinstance(right.value, str))
                 or (isinstance(right, ast.Name) and right.id.isupper()))
        if named and "state" in ast.unparse(left):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_only_the_state_module_names_paths_in_the_state_folder():
    others = [p for p in PACKAGE.rglob("*.py") if p.resolve() != Path(state.__file__).resolve()]
    assert [f"{p.relative_to(PACKAGE.parent)}:{line}" for p in others
            for line in paths_built_on_a_state_folder(p.read_text())] == []


def test_the_check_finds_the_paths_the_agent_used_to_build_itself():
    source = ('busy = self.state.directory / "busy"\nmodels = self.state_dir / "models"\n'
              'p = state_dir / POLICY_FILE\nq = os.path.join(state_dir, "floor.sqlite")\nok = Path(x) / "y"\n')
    assert len(paths_built_on_a_state_folder(source)) == 4


def test_the_layout_keeps_every_file_name():
    d = Path("/s")
    assert [str(f(d)) for f in (state.policy_file, state.personal_models_dir, state.released_models_dir,
                                state.floor_database, state.datasite_dir, state.busy_file)] == [
        "/s/policy.yaml", "/s/personal", "/s/models", "/s/floor.sqlite", "/s/datasite", "/s/busy"]
