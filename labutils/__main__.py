"""`python -m labutils`: decompress the bundled MNIST once and check every file's sha256.

`python -m labutils progress FOLDER ...`: a workshop's progress, exercise by exercise (see labutils.progress).
"""
import sys

if sys.argv[1:2] == ["progress"]:
    from .progress import main

    sys.exit(main(sys.argv[2:]))

from .data import main

sys.exit(main())
