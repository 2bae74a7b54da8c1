"""The names of the compute modes a fit can ask for: the one list each flag, schema check and test reads.

No torch here, so the command line can offer them as choices without loading torch.
"""

PRECISIONS = ("fp32", "bf16", "tf32")  # tf32: CUDA only; bf16: autocast of the forward pass
# What a request may name: a precision, or auto (bf16 where the hardware computes it natively, else fp32;
# resolved before the fit by dip.core.compute.resolve_precision, so records hold the precision that ran).
PRECISION_CHOICES = ("auto", *PRECISIONS)
DEVICES = ("auto", "cpu", "cuda", "mps")
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")
CUDA_GRAPH_MODES = ("auto", "on", "off")
