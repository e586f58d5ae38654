"""``python -m tether``: an interactive console with top-level ``await``,
or ``python -m tether SCRIPT`` / ``-m MODULE`` to run an async ``main()``
under tether. See `tether._repl`."""

import sys

from ._repl import main

sys.exit(main(sys.argv[1:]))
