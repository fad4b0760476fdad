"""`python -m labutils`: decompress the bundled MNIST once and check every file's sha256."""
import sys

from .data import main

sys.exit(main())
