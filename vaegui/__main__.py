import sys

from vaegui.cli import main

sys.exit(main())
