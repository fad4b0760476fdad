def fc1_inputs(image_size: int, conv1_padding: int) -> int:
    side = image_size + 2 * conv1_padding - 4  # conv1: 5×5, no stride
    side //= 2  # 2×2 max-pool
    side -= 4  # conv2: 5×5
    side //= 2  # 2×2 max-pool
    return 16 * side * side
