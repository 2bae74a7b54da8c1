"""The longer help texts of the `dip` command (dip.cli): what dip inpaint's mask, presets and progress mean."""

# The mask rules of dip inpaint (dip.inpaint.drawn_mask.read_drawn_mask); docs/photo.md says the same.
MASK_RULES = ("two tones, the damage in one and the rest in the other, as any editor draws them: white on black "
              "(as LaMa, IOPaint and OpenCV read masks: white = fill in) or black on white; which tone is the "
              "damage: see --mask-convention. Any mode: gray, 1-bit, palette, 16-bit, or RGB whose channels "
              "agree. A mask with transparency: its alpha is the mask (opaque counts as white). Soft edges "
              "(anti-aliased brushes, JPEG) are thresholded at half")
CONVENTION_HELP = ("which tone of MASK marks the damage. auto: the tone covering at most 35%% of the mask (said "
                   "in one line; refused when both cover more, as that would be a guess); white-missing: white "
                   "(or opaque) = fill in, as LaMa, IOPaint and OpenCV; white-known: white = keep, black = fill "
                   "in (the masks of dip mask and the paper's data)")


# Which preset suits which damage (dip inpaint --help; the README says the same). auto's thresholds and table:
# src/dip/inpaint/auto.yaml.
INPAINT_PRESETS = (
    "auto: picked from the mask and the device, printed with the reason. By damage: scattered missing "
    "pixels (Table 1's 50%% dropped pixels): table1; text and thin scratches: fig7_text; large holes: "
    "large_holes (6 scales, no skips; Figure 8) or large_holes_meshgrid (coordinates as input; Figure 6). "
    "On a CUDA GPU auto uses these; on a CPU their reduced versions table1_cpu, fig7_text_cpu, large_holes_cpu "
    "(narrower network, fewer iterations, bf16), so a 512x512 photo takes minutes, not hours")
PROGRESS_HELP = ("a tqdm bar on a terminal (default), else one line per evaluation: 'it N/M' (N of M iterations "
                 "done), 'known-pixel psnr' (PSNR in dB of the output on the pixels the mask keeps: how closely the "
                 "network reproduces them; the fill itself has no ground truth), the running rate in s/it and the "
                 "time left. The time estimate is said again whenever the running rate moves it by more than a "
                 "third")
