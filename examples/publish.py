# Copyright 2026 The birefnet_hf Authors. Licensed under the MIT License (see LICENSE).
"""Publish BiRefNet models to the Hugging Face Hub: the same as ``birefnet-hf publish``.

    python examples/publish.py --random-init --dry-run --output-dir publish-dry-run --only pvt_v2_b0
    python examples/publish.py --repo-prefix my-org/birefnet- --weights-dir 'runs/{size}/final' \\
        --eval-results 'eval/{size}.json'

See ``python examples/publish.py --help`` and :mod:`birefnet_hf.publish`.
"""

import sys

from birefnet_hf.publish import main

if __name__ == "__main__":
    sys.exit(main())
