"""The bad-input battery: every rejected value is one line naming the key, the value and what is allowed
(exit code 2 from the entry points), raised before any data loads and before anything is written."""

import sys
from pathlib import Path

import pytest
import torch
from helpers import ROOT, TINY, run_script

from randwire.models.errors import ConfigError
from randwire.training.config import compose_config, composition_error_line
from randwire.training.errors import CheckpointError
from randwire.training.evaluate import evaluate
from randwire.training.inspect_network import main as inspect_main
from randwire.training.run import train

# (overrides, the start of the one line) — train.py, checked in-process
TRAIN_BAD = [
    ("graph.k=3", "graph.k=3 is out of range: allowed an even integer in [2, n)"),
    ("graph.p=1.5", "graph.p=1.5 is out of range: allowed a probability in [0, 1]"),
    ("graph.n=1", "graph.n=1 is out of range: allowed an integer >= 2"),
    ("graph=ba graph.m=40", "graph.m=40 is out of range: allowed an integer in [1, n) = [1, 8)"),
    ("graph=ba graph.m=0", "graph.m=0 is out of range: allowed an integer in [1, n) = [1, 8)"),
    (
        "regime=regular graph.n=8 graph.k=4",
        "graph.k=4 is out of range: allowed an even integer in [2, 4) for the 4-node stage",
    ),
    ("regime=regular graph=er graph.n=3", "graph.n=3 is out of range: allowed n >= 4 for regime='regular'"),
    ("regime.c=1", "regime.c=1 is out of range: allowed an integer >= 2, or auto (with regime.flops=<multiply-adds>)"),
    (
        "regime.c=1.5",
        "regime.c=1.5 is out of range: allowed an integer >= 2, or auto (with regime.flops=<multiply-adds>)",
    ),
    ("regime.dropout=1.0", "regime.dropout=1.0 is out of range: allowed a float in [0, 1)"),
    ("regime.edge_drop=1.5", "regime.edge_drop=1.5 is out of range: allowed a probability in [0, 1]"),
    ("regime.head_channels=0", "regime.head_channels=0 is out of range: allowed an integer >= 1"),
    ("regime.name=tiny", "regime.name='tiny' is not allowed: one of ['small', 'regular', 'lowres']"),
    (
        "node_op.name=dilated",
        "node_op.name='dilated' is not allowed: one of ['sep_conv', 'conv', 'max_pool', 'avg_pool']",
    ),
    ("+graph.m=3", "graph.m is not a key of graph='ws': allowed ['name', 'n', 'k', 'p', 'connected']"),
    ("seed=-1", "seed=-1 is out of range: allowed an integer >= 0"),
    ("seed=abc", "seed='abc' is not allowed: an integer >= 0 (got text)"),
    ("seed=[1,2]", "seed=[1, 2] is not allowed: an integer >= 0 (got a list)"),
    (
        "regime.flops=-1",
        "regime.flops=-1.0 is out of range: allowed null, or a multiply-add budget > 0 (read only with c=auto)",
    ),
    ("regime.flops=nan", "regime.flops=nan is out of range: allowed null, or a multiply-add budget > 0"),
    (
        "regime.c=auto regime.flops=nan",
        "regime.flops=nan is out of range: allowed a multiply-add budget > 0 (e.g. 580e6) when c=auto",
    ),
    ("optimizer.lr=nan", "optimizer.lr=nan is not allowed: a finite number"),
    ("optimizer.weight_decay=nan", "optimizer.weight_decay=nan is not allowed: a finite number"),
    ("optimizer.momentum=nan", "optimizer.momentum=nan is not allowed: a finite number"),
    ("optimizer.momentum=1.5", "optimizer.momentum=1.5 is out of range: allowed a number in [0, 1)"),
    ("optimizer.momentum=1e12", "optimizer.momentum=1000000000000.0 is out of range: allowed a number in [0, 1)"),
    ("ckpt_path=-1", "ckpt_path=-1 is not allowed: null, or the path of a .ckpt file (got a number)"),
    ("ckpt_path=0", "ckpt_path=0 is not allowed: null, or the path of a .ckpt file (got a number)"),
    ("ckpt_path=1.5", "ckpt_path=1.5 is not allowed: null, or the path of a .ckpt file (got a number)"),
    ("ckpt_path=''", "ckpt_path='' is not allowed: null, or the path of a .ckpt file (got empty text)"),
    ("data.num_classes=0", "data.num_classes=0 is out of range: allowed an integer >= 1"),
    ("data.in_channels=0", "data.in_channels=0 is out of range: allowed an integer >= 1"),
    ("data.batch_size=0", "data.batch_size=0 is out of range: allowed an integer >= 1"),
    ("data.num_workers=-1", "data.num_workers=-1 is out of range: allowed an integer >= 0"),
    ("data.image_size=4", "data.image_size=4 is out of range: allowed an integer >= 8 (pixels)"),
    ("data.augment=mixup", "data.augment='mixup' is not allowed: one of ['none', 'crop', 'crop_flip', 'imagenet']"),
    ("data=cifar10", "data.root=None is not allowed: data=cifar10 needs the path of a local cifar10 copy"),
    (
        "data=imagenet data.root=/nonexistent/imagenet",
        "data.root='/nonexistent/imagenet' is not allowed: /nonexistent/imagenet/train does not exist",
    ),
    ("optimizer.lr=-0.1", "optimizer.lr=-0.1 is not allowed: torch.optim.SGD says: Invalid learning rate: -0.1"),
    (
        "optimizer.weight_decay=-0.1",
        "optimizer.weight_decay=-0.1 is not allowed: torch.optim.SGD says: Invalid weight_decay value: -0.1",
    ),
    (
        "optimizer.momentum=-0.5",
        "optimizer.momentum=-0.5 is not allowed: torch.optim.SGD says: Invalid momentum value: -0.5",
    ),
    (
        "optimizer=adamw optimizer.betas=[0.9,1.5]",
        "optimizer.betas=[0.9, 1.5] is not allowed: torch.optim.AdamW says: Invalid beta parameter at index 1: 1.5",
    ),
    ("+optimizer.foo=1", "optimizer.foo is not an argument of torch.optim.SGD: remove it"),
    (
        "optimizer._target_=torch.optim.Nope",
        "optimizer (torch.optim.Nope) is not allowed: Error loading 'torch.optim.Nope'",
    ),
    (
        "scheduler.warmup_epochs=5",
        "scheduler.warmup_epochs=5 is out of range: allowed a number in [0, trainer.max_epochs=1)",
    ),
    ("scheduler.final_lr_fraction=2", "scheduler.final_lr_fraction=2 is out of range: allowed a fraction in [0, 1]"),
    ("trainer.max_epochs=0", "trainer.max_epochs=0 is out of range: allowed an integer >= 1"),
    ("trainer.precision=17", "trainer.precision=17 is not allowed: pytorch_lightning.Trainer says: Precision"),
    ("trainer.accelerator=tpux", "trainer.accelerator='tpux' is not allowed: pytorch_lightning.Trainer says:"),
    ("trainer.devices=0", "trainer.devices=0 is not allowed: pytorch_lightning.Trainer says:"),
    ("+trainer.max_epoch=3", "trainer.max_epoch is not an argument of pytorch_lightning.Trainer: remove it"),
    ("model.label_smoothing=1.0", "model.label_smoothing=1.0 is out of range: allowed a number in [0, 1)"),
    ("model.lr_reference_batch=0", "model.lr_reference_batch=0 is out of range: allowed an integer >= 1, or null"),
    ("execution.mode=turbo", "execution.mode='turbo' is not allowed: one of ['reference', 'fast']"),
    ("execution.schedule=random", "execution.schedule='random' is not allowed: one of ['memory', 'index']"),
    ("execution.compile_mode=fastest", "execution.compile_mode='fastest' is not allowed: one of [None, 'default'"),
    ("+execution.cuda_graphs=true", "execution.cuda_graphs is not a known key: allowed ['channels_last', 'compile'"),
    ("optimized_metric=test/acc1", "optimized_metric='test/acc1' is not allowed: a validation metric (val/...)"),
    (
        "+callbacks.stop._target_=pytorch_lightning.callbacks.EarlyStopping",
        "callbacks.stop (pytorch_lightning.callbacks.EarlyStopping) is not allowed:",
    ),
    ("ckpt_path=/nonexistent/x.ckpt", "ckpt_path='/nonexistent/x.ckpt': no such checkpoint file"),
]


@pytest.mark.parametrize("overrides,message", TRAIN_BAD, ids=[b[0] for b in TRAIN_BAD])
def test_bad_train_value_is_one_line_before_anything_is_written(compose_cfg, tmp_path, overrides, message):
    base = [o for o in TINY if not (overrides.startswith("data=") and o.startswith("data."))]
    cfg = compose_cfg(*base, "callbacks=default", *overrides.split(), run_dir=tmp_path / "run")
    with pytest.raises((ConfigError, CheckpointError)) as info:
        train(cfg)
    assert str(info.value).startswith(message) and "\n" not in str(info.value), str(info.value)
    assert not (tmp_path / "run").exists()  # no checkpoint, no half-written run folder


# Wrong types, unknown keys and group options: caught while Hydra composes (the schemas), one line each.
COMPOSE_BAD = [
    ("graph.k=abc", "graph.k='abc' is not allowed: the schema wants integer"),
    ("graph.p=high", "graph.p='high' is not allowed: the schema wants float"),
    ("regime.flops=lots", "regime.flops='lots' is not allowed: the schema wants float"),
    ("execution.compile=maybe", "execution.compile='maybe' is not allowed: true or false"),
    ("regime.foo=1", "regime.foo is not a key of this config group (Regime)"),
    ("graph.n=null", "graph.n=null is not allowed: it needs a value (an integer)"),
    ("graph.p=null", "graph.p=null is not allowed: it needs a value (a number)"),
    ("graph=foo", "graph='foo' is not allowed: one of ['ba', 'er', 'file', 'networkx', 'ws', 'ws_flex']"),
    ("experiment=nope", "experiment='nope' is not allowed: one of ['analysis_small', 'cpu_budget'"),
    ("optimizer=lamb", "optimizer='lamb' is not allowed: one of ['adamw', 'sgd']"),
    ("trainer=''", "trainer='' is not allowed: one of ['cpu', 'ddp', 'ddp_cpu', 'default', 'gpu']"),  # issue 28
]


@pytest.mark.parametrize("override,message", COMPOSE_BAD, ids=[b[0] for b in COMPOSE_BAD])
def test_bad_type_or_key_is_one_line_at_composition(override, message):
    with pytest.raises(Exception) as info:
        compose_config("train", [override])
    assert composition_error_line(info.value) == message or composition_error_line(info.value).startswith(message)
    assert "\n" not in composition_error_line(info.value)


# --- evaluate.py ----------------------------------------------------------------------------------------


@pytest.fixture
def checkpoint(tiny_run):
    return tiny_run[0] / "checkpoints" / "last.ckpt"


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def _crafted(tmp_path: Path, checkpoint: Path, what: str) -> Path:
    ckpt = torch.load(checkpoint, weights_only=True)
    if what == "payload":
        ckpt["randwire"]["extra"] = _Payload(str(tmp_path / "pwned"))
    elif what == "format":
        ckpt["randwire"]["format"] = 99
    elif what == "edited_graph":
        ckpt["randwire"]["net_spec"]["graphs"][0]["edges"].pop()
    elif what == "shapes":
        key = next(k for k in ckpt["state_dict"] if k.endswith("conv_pw.weight"))
        ckpt["state_dict"].pop(key)
    elif what == "no_state_dict":
        ckpt.pop("state_dict")
    path = tmp_path / f"{what}.ckpt"
    torch.save(ckpt, path)
    return path


EVAL_BAD = [
    ({"split": "bogus"}, None, "split='bogus' is not allowed: one of ['train', 'val', 'test']"),
    ({"image_size": 4}, None, "image_size=4 is out of range: allowed an integer >= 8 (pixels)"),
    ({"batch_size": 0}, None, "batch_size=0 is out of range: allowed an integer >= 1"),
    ({"precision": "fp8"}, None, "precision='fp8' is not allowed: one of ['32-true', 'bf16-mixed', '16-mixed']"),
    ({"execution": {"schedule": "x"}}, "missing", "execution.schedule='x' is not allowed: one of ['memory', 'index']"),
    ({}, "missing", "ckpt='{p}': no such checkpoint file"),
    ({}, "junk", "ckpt='{p}': not a readable checkpoint"),
    (
        {},
        "half",
        "ckpt='{p}': not a readable checkpoint (RuntimeError: truncated or corrupt (a copy or a write cut short))",
    ),
    ({}, "text", "ckpt='{p}': not a readable checkpoint (not a file torch.save wrote)"),
    ({}, "foreign", "ckpt='{p}': not a randwire checkpoint (it stores no RandWire graphs)"),
    ({}, "payload", "ckpt='{p}': not a readable checkpoint (UnpicklingError: it holds pickled Python objects"),
    ({}, "format", "ckpt='{p}': randwire checkpoint format 99 is not supported"),
    ({}, "edited_graph", "{p}[0]: content hash mismatch"),
    ({}, "shapes", "ckpt='{p}': weights do not match the stored graphs"),
    ({}, "no_state_dict", "ckpt='{p}': weights do not match the stored graphs"),
    ({"ckpt": None}, None, "ckpt is missing: pass ckpt=<path of a .ckpt file>"),
    ({"out": "{tmp}/a_file/eval.json"}, None, "out='{tmp}/a_file/eval.json' is not writable ("),
    (
        {"data": {"root": "/datasets/imagenet"}},
        None,
        "data.root='/datasets/imagenet' is not allowed: the checkpoint was trained on data=synthetic, which reads no data.root",
    ),
    ({"data": {"num_workers": -1}}, None, "data.num_workers=-1 is out of range: allowed an integer >= 0"),
]


@pytest.mark.parametrize(
    "changes,ckpt_kind,message", EVAL_BAD, ids=[f"{i}-{m[:24]}" for i, (_, _, m) in enumerate(EVAL_BAD)]
)
def test_bad_evaluate_input_is_one_line(compose_cfg, tmp_path, checkpoint, changes, ckpt_kind, message):
    from omegaconf import OmegaConf

    path = checkpoint
    if ckpt_kind == "missing":
        path = tmp_path / "none.ckpt"
    elif ckpt_kind == "junk":
        path = tmp_path / "junk.ckpt"
        path.write_bytes(b"\x00garbage")
    elif ckpt_kind == "half":  # a copy cut short
        path = tmp_path / "half.ckpt"
        path.write_bytes(checkpoint.read_bytes()[: checkpoint.stat().st_size // 2])
    elif ckpt_kind == "text":
        path = tmp_path / "notes.ckpt"
        path.write_text("epoch 3: val 91%\n" * 20)
    elif ckpt_kind == "foreign":
        path = tmp_path / "foreign.ckpt"
        torch.save({"state_dict": {"w": torch.zeros(1)}}, path)
    elif ckpt_kind is not None:
        path = _crafted(tmp_path, checkpoint, ckpt_kind)
    cfg = compose_cfg(f"ckpt={path}", "accelerator=cpu", f"out={tmp_path / 'eval.json'}", config="evaluate")
    (tmp_path / "a_file").write_text("not a folder")
    changes = {k: (v.format(tmp=tmp_path) if isinstance(v, str) else v) for k, v in changes.items()}
    cfg = OmegaConf.merge(cfg, changes)
    with pytest.raises(ValueError) as info:
        evaluate(cfg)
    assert str(info.value).startswith(message.format(p=path, tmp=tmp_path)) and "\n" not in str(info.value), str(
        info.value
    )
    assert not (tmp_path / "eval.json").exists() and not (tmp_path / "pwned").exists()  # the payload never ran


# --- inspect ----------------------------------------------------------------------------------------------

INSPECT_BAD = [
    (["graph=ws", "graph.k=5"], "graph.k=5 is out of range: allowed an even integer in [2, n) = [2, 32)"),
    (["graph=foo"], "graph='foo' is not allowed: one of ['ba', 'er', 'file', 'networkx', 'ws', 'ws_flex']"),
    (["experiment=nope"], "experiment='nope' is not allowed: one of ['analysis_small', 'cpu_budget'"),
    (["graph.k=abc"], "graph.k='abc' is not allowed: the schema wants integer"),
    (["regime.c=1"], "regime.c=1 is out of range: allowed an integer >= 2"),
    (["foo"], "argument 'foo' is not a key=value override"),
]


@pytest.mark.parametrize("argv,message", INSPECT_BAD, ids=[" ".join(a) for a, _ in INSPECT_BAD])
def test_bad_inspect_input_is_one_line(tmp_path, capsys, argv, message):
    assert inspect_main([*argv, f"out={tmp_path / 'x'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {message}") and "\n" not in err, err
    assert not (tmp_path / "x").exists()


def test_a_missing_sweeper_plugin_says_how_to_install_it():
    from hydra.errors import MissingConfigException

    err = MissingConfigException(
        "In 'hydra/config': Could not find 'hydra/sweeper/optuna'\n\nAvailable options in "
        "'hydra/sweeper':\n\tbasic\nConfig search path:\n\tprovider=hydra, path=pkg://hydra.conf"
    )
    assert composition_error_line(err) == (
        "hydra/sweeper='optuna' needs a plugin that is not installed: "
        'pip install -e ".[sweep]" (hydra-optuna-sweeper; used by hparams_search=lr_optuna)'
    )


def test_the_battery_covers_the_three_entry_points():
    assert len(TRAIN_BAD) + len(COMPOSE_BAD) + len(EVAL_BAD) + len(INSPECT_BAD) >= 40


@pytest.mark.slow
@pytest.mark.parametrize(
    "argv,line",
    [
        (["train.py", "graph.k=5"], "error: graph.k=5 is out of range: allowed an even integer in [2, n) = [2, 32)"),
        (["train.py", "graph.k=abc"], "error: graph.k='abc' is not allowed: the schema wants integer"),
        (
            ["train.py", "node_op=0"],
            "error: node_op=0 is not allowed: a config group takes an option name, one of "
            "['avg_pool', 'conv', 'max_pool', 'sep_conv']",
        ),
        (
            ["train.py", "optimizer=null"],
            "error: optimizer=null is not allowed: a config group takes an option name, one of ['adamw', 'sgd']",
        ),
        (
            ["evaluate.py", "ckpt=none.ckpt", "split=x"],
            "error: split='x' is not allowed: one of ['train', 'val', 'test']",
        ),
        (
            ["train.py", "hydra.run.dir={tmp}/a_file/run"],
            "error: cannot write the output folder {tmp}/a_file/run: Not a directory "
            "(set hydra.run.dir / hydra.sweep.dir, or paths.log_dir, to a writable place)",
        ),
    ],
)
def test_cli_bad_value_exits_2_with_one_line_and_writes_nothing(tmp_path, argv, line):
    (tmp_path / "a_file").write_text("not a folder")
    argv = [a.format(tmp=tmp_path) for a in argv]
    extra = [f"hydra.run.dir={tmp_path}/run"] if argv[0] == "train.py" and "hydra.run.dir" not in str(argv) else []
    proc = run_script([sys.executable, str(ROOT / argv[0]), *argv[1:], *extra], cwd=tmp_path, timeout=120, expect=2)
    assert proc.stderr.strip() == line.format(tmp=tmp_path)
    assert not (tmp_path / "run").exists() and not (tmp_path / "outputs").exists()  # not even Hydra's .hydra/


@pytest.mark.parametrize("override", ["graph.k=3", "regime.c=1", "node_op=foo", "data.batch_size=0", "data=imagenet"])
def test_network_and_data_values_are_refused_before_torch_loads(override):
    """Issue 9 item 13: network and data values are checked before torch and Lightning are imported (about
    a second instead of ~7 s); optimizer values need torch, trainer values Lightning (their own checks)."""
    probe = (
        "import atexit, runpy, sys\n"
        "atexit.register(lambda: print('heavy:', sorted(m for m in ('torch', 'pytorch_lightning') if m in sys.modules), file=sys.stderr))\n"
        f"sys.argv = ['train.py', {override!r}]\n"
        "runpy.run_path('train.py', run_name='__main__')\n"
    )
    done = run_script([sys.executable, "-c", probe], timeout=120, expect=2)
    assert done.stderr.splitlines()[-2].startswith("error: ") and done.stderr.splitlines()[-1] == "heavy: []"
