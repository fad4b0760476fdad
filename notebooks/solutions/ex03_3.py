def untie(state_dict):
    seen = set()
    untied = {}
    for key, tensor in state_dict.items():
        pointer = tensor.untyped_storage().data_ptr()
        untied[key] = tensor.clone() if pointer in seen else tensor
        seen.add(pointer)
    return untied
