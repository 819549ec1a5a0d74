"""``python -m studio.cli``: the same as the ``qwen-tts-studio`` command."""

import sys

from studio.cli.main import main

sys.exit(main())
