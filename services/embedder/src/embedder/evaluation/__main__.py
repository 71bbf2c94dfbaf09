import sys

from embedder.evaluation.cli import main

sys.exit(main())
