"""The photo path, ``dip inpaint``: the command (:mod:`.command`), the preset chosen from the mask
(:mod:`.autopreset`), the memory estimate and refusal (:mod:`.memory`) and the time estimate
(:mod:`.time_estimate`). Runs fits through :mod:`dip.engine`."""
