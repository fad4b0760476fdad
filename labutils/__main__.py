"""`python -m labutils`: decompress the bundled MNIST once and check every file's sha256.

`python -m labutils progress FOLDER ...`: a workshop's progress, exercise by exercise (see labutils.progress).

`python -m labutils inspect PATH ...`: what a model file or folder is, what it holds, whether loading it runs code,
and the line that loads it safely (see labutils.describe).
"""
import sys

if sys.argv[1:2] == ["progress"]:
    from .progress import main

    sys.exit(main(sys.argv[2:]))
if sys.argv[1:2] == ["inspect"]:
    from .describe import main

    sys.exit(main(sys.argv[2:]))

from .data import main

sys.exit(main())
