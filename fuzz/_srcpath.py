"""Put the source tree's ``python/`` first on sys.path when it holds an in-place build.

On a fresh clone (CI) the extension exists only in the installed package, so the source tree
must not shadow it; with a dev build (``cmake --preset dev``) the harnesses fuzz that build.
"""

import glob
import os
import sys

_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python")
if glob.glob(os.path.join(_SRC, "forgeline", "_core*.so")):
    sys.path.insert(0, _SRC)
