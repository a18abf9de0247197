import sys

from mlops_assets.cli.commands import main

sys.exit(main())
