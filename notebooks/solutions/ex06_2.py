import random

import torch


def capture_rng_state(numpy_generator):
    return {
        "python": random.getstate(),
        "numpy": numpy_generator.bit_generator.state,  # a plain dict, not the generator object
        "torch": torch.get_rng_state(),
    }
