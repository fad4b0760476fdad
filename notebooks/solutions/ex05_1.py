def freeze_layers(model, layers):
    for name, parameter in model.named_parameters():
        if any(name.startswith(layer + ".") for layer in layers):
            parameter.requires_grad_(False)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
