"""randwire's Slurm launcher as a Hydra plugin: Hydra instantiates launchers only from the ``hydra_plugins``
namespace. The logic is ``randwire.training.launcher``'s; ``conf/hydra/launcher/submitit_slurm.yaml`` names this class."""

from randwire.training.launcher import SlurmLauncher


class RandwireSlurmLauncher(SlurmLauncher):
    """``hydra/launcher=submitit_slurm``: hydra-submitit-launcher's submission, a wait that always ends."""
