"""Every private attribute of Lightning, Hydra, submitit, W&B and torch that randwire relies on is still
there (randwire/training/private_apis.py): an upgrade that renames one fails here, naming it and what it carries."""

from randwire.training.private_apis import PRIVATE_APIS, changed


def test_the_private_apis_randwire_relies_on_are_all_there():
    assert changed() == []


def test_a_changed_private_api_is_named_with_what_breaks(monkeypatch):
    import randwire.training.private_apis as apis

    gone = apis.PrivateAPI("Trainer._x", "module.Y", "Z holds", lambda: False)
    moved = apis.PrivateAPI("pkg._z", "data.W", "V holds", lambda: __import__("no_such_module_here"))
    monkeypatch.setattr(apis, "PRIVATE_APIS", (*PRIVATE_APIS[:1], gone, moved))
    assert changed() == [
        "Trainer._x is gone: module.Y uses it so that Z holds",
        "pkg._z is gone (ModuleNotFoundError: No module named 'no_such_module_here'): data.W uses it so that V holds",
    ]


def test_every_listed_use_is_where_the_list_says():
    """The list names our code that uses each private attribute; after code moves it must still point at it."""
    import importlib

    for api in PRIVATE_APIS:
        layer, module, *names = api.where.split(".")
        obj = importlib.import_module(f"randwire.{layer}.{module}")
        for name in names:
            assert hasattr(obj, name), f"{api.what}: its use {api.where!r} is not in randwire"
            obj = getattr(obj, name)


def test_no_private_attribute_is_used_outside_the_adapter_module():
    """Every private attribute of Lightning/Hydra/W&B/submitit/torch goes through one function of
    randwire/training/private_apis.py: none of the names it lists appears anywhere else in randwire."""
    from helpers import ROOT

    from randwire.training.private_apis import PRIVATE_NAMES

    adapter = ROOT / "randwire" / "training" / "private_apis.py"
    found = [
        f"{path.relative_to(ROOT)}:{number}: {name}"
        for path in sorted([*(ROOT / "randwire").rglob("*.py"), *(ROOT / "hydra_plugins").rglob("*.py")])
        if path != adapter
        for number, line in enumerate(path.read_text().splitlines(), 1)
        for name in PRIVATE_NAMES
        if name in line
    ]
    assert found == [], "\n".join(found)
    assert len(PRIVATE_NAMES) >= 15 and all(name in adapter.read_text() for name in PRIVATE_NAMES if name[0] == ".")


def test_every_adapter_says_the_versions_it_was_checked_on():
    assert all(api.checked for api in PRIVATE_APIS), [api.what for api in PRIVATE_APIS if not api.checked]
