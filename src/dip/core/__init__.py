"""The method, torch and numpy only: the skip network and its input z (:mod:`.network`), the masked objective
(:mod:`.objective`), one optimisation step (:mod:`.step`), the authors' backtracking rule (:mod:`.guard`), the
observers of every output (:mod:`.averaging`, :mod:`.stopping`), the curve of evaluations (:mod:`.curve`), quality
metrics (:mod:`.quality`), where and how the arithmetic runs (:mod:`.compute`) and the classical fill that DIP is
compared with (:mod:`.classical`). Nothing here reads files or knows about fits, the pipeline or the CLI."""
