"""The fixed choices of settings, and the built-in window length the presets' strides are counted in."""

HAPT_WINDOW = 128
"""Samples per window of the built-in data sets (2.56 s at 50 Hz): the presets' ``train_stride`` is in these."""
MODES = ("flatten", "sensor", "stack")
SCALINGS = ("global", "window")
SCALE_RANGES = ("unit", "symmetric")
AUGMENT_AXES = ("any", "x", "y", "z", "lying")
AMP_DTYPES = ("bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")
NAN_POLICIES = ("error", "drop", "interpolate")
CLASS_BALANCES = ("none", "weights", "sampler")
TIME_UNITS = ("auto", "s", "ms", "us", "ns")
SUBJECT_SOURCES = ("auto", "column", "folder", "file", "none")
BASELINE_SETS = ("auto", "fast", "all")
