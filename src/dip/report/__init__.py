"""What the pipeline shows: reading finished fits (:mod:`.results`), Table 1 (:mod:`.table1`), ours vs the authors'
code (:mod:`.parity`), statistics over seeds (:mod:`.stats`), Figure 7 (:mod:`.figure7`), ``dip report``
(:mod:`.aggregate`) and the CI regression gate (:mod:`.gate`). Reads results; never runs or imports the engine."""
