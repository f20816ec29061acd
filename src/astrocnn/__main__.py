import sys

from astrocnn.cli import main

sys.exit(main())
