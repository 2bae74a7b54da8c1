"""Files in and out: images and masks (:mod:`.images`), atomic writes (:mod:`.atomic`), the data manifest and its
verification (:mod:`.manifest`), fetching (:mod:`.fetch`), presets (:mod:`.presets`), the pipeline config
(:mod:`.config`), JSON Schemas (:mod:`.schemas`) and the refusal of configs that are code (:mod:`.safeconfig`).
No torch here."""
