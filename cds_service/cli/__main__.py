"""`python -m cds_service.cli`: the same as the `mipomersen-cds` command."""

import sys

from cds_service.cli.main import main

sys.exit(main())
