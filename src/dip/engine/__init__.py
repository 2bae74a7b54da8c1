"""One fit: the request and its inputs (:mod:`.request`), the loop (:mod:`.fit`), the authors' engine
(:mod:`.authors`), the table of engines (:mod:`.engines`), checkpoints (:mod:`.checkpoint`), the outputs
(:mod:`.outputs`), progress lines (:mod:`.progress`) and SIGINT/SIGTERM handling (:mod:`.interrupts`). Built on
:mod:`dip.core` and :mod:`dip.data`."""
