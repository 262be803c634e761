"""``python -m randwire.analysis <grid|damage|nodeops|stats> PATH... [--out DIR]``"""

import sys

from .cli import main

sys.exit(main())
