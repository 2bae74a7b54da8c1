"""The names of the compute modes a fit can ask for: the one list each flag, schema check and test reads.

No torch here, so the command line can offer them as choices without loading torch.
"""

PRECISIONS = ("fp32", "bf16", "tf32")  # tf32: CUDA only; bf16: autocast of the forward pass
DEVICES = ("auto", "cpu", "cuda", "mps")
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")
CUDA_GRAPH_MODES = ("auto", "on", "off")
