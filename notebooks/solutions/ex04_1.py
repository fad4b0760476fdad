def strip_prefix(state_dict, prefix):
    return {key.removeprefix(prefix): value for key, value in state_dict.items()}
