def carry_adam_state(saved, model, optimizer):
    # the saved state numbers parameters by position across param_groups; saved["parameters"] names each position
    old_names = [name for group in saved["parameters"] for name in group]
    old_shapes = [shape for group in saved["shapes"] for shape in group]
    old_position = {name: i for i, name in enumerate(old_names)}
    names = {id(p): name for name, p in model.named_parameters()}
    new_params = [p for group in optimizer.param_groups for p in group["params"]]
    state = optimizer.state_dict()  # its param_groups keep the settings this optimizer was built with
    carried = []
    for j, parameter in enumerate(new_params):
        name = names[id(parameter)]
        i = old_position.get(name)
        if i is not None and i in saved["state_dict"]["state"] and old_shapes[i] == list(parameter.shape):
            state["state"][j] = saved["state_dict"]["state"][i]
            carried.append(name)
    optimizer.load_state_dict(state)  # parameters left out of state["state"] (the new head) start fresh
    return carried
