"""Every private attribute of Lightning, Hydra, submitit, W&B and torch that randwire relies on is still
there (randwire/private_apis.py): an upgrade that renames one fails here, naming it and what it carries."""

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
