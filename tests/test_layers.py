"""The three layers and their one-way dependency (README "How the code is organised")."""

import ast
import sys

from helpers import ROOT, run_script

PACKAGE = ROOT / "randwire"
LAYERS = ("models", "training", "analysis")  # each may import only from the ones before it
FRAMEWORKS = ("pytorch_lightning", "lightning", "lightning_fabric", "hydra", "omegaconf", "wandb", "submitit")


def randwire_imports(path):
    """The randwire layers a module imports (at any depth, relative or absolute)."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(parts[: len(parts) - node.level])
                target = [*base, *(node.module.split(".") if node.module else [])]
            else:
                target = (node.module or "").split(".")
            names = [target] if len(target) > 1 or node.module else [[*target, a.name] for a in node.names]
            for t in names:
                if t[0] == "randwire" and len(t) > 1:
                    found.add(t[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("randwire.")}
    return found


def test_every_module_lives_in_a_layer():
    loose = [p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"]
    assert loose == [], f"modules outside the three layers: {loose}"


def test_layers_import_only_downwards():
    wrong = []
    for rank, layer in enumerate(LAYERS):
        for path in sorted((PACKAGE / layer).rglob("*.py")):
            above = randwire_imports(path) & set(LAYERS[rank + 1 :])
            if above:
                wrong.append(f"{path.relative_to(ROOT)} imports randwire.{sorted(above)[0]}")
    assert wrong == [], "\n".join(wrong)


def test_the_model_library_imports_no_training_framework():
    """Every module of randwire.models imported in a fresh interpreter: Lightning, Hydra, OmegaConf, W&B
    and submitit stay out of sys.modules."""
    modules = sorted(f"randwire.models.{p.stem}" for p in (PACKAGE / "models").glob("*.py") if p.stem != "__init__")
    code = (
        f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
        f"print(','.join(sorted({{k.split('.')[0] for k in sys.modules}} & set({FRAMEWORKS!r}))))"
    )
    done = run_script([sys.executable, "-c", code], expect=0)
    assert len(modules) >= 8 and done.stdout.strip() == "", f"randwire.models loads {done.stdout.strip()}"


def test_functions_and_modules_stay_small():
    """One job per module and per function (issue 18's bounds): a function over 60 lines or a module over
    360 is named here, to be split where its steps are."""
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        if len(source.splitlines()) > 360:
            long.append(f"{path.relative_to(ROOT)}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                long.append(
                    f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1} lines"
                )
    assert long == [], "\n".join(long)
