"""Channel rounding shared by every widened family."""


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor``, never losing more than 10%.

    This is the rule torchvision's MobileNetV2 applies to ``width_mult``; using it
    for every family means "width 1.5" means the same thing everywhere.
    """
    min_value = divisor if min_value is None else min_value
    new_value = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new_value < 0.9 * value:
        new_value += divisor
    return new_value
