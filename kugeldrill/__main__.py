import sys

from kugeldrill.cli import main

sys.exit(main())
